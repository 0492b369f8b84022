"""/docs and /redoc in a real browser (Debian's Chromium), from assets the server ships.

The server is uvicorn on 127.0.0.1 with an API key; every request the pages make to another
origin is aborted and fails the test (browsertools.server_page), so a page that needs a CDN
renders blank *and* fails here.
"""

from __future__ import annotations

import httpx
import pytest
from apptools import make_settings
from browsertools import chromium, server_page
from test_multipart_limits import loopback_server

from app.main import create_app

KEY = "docs-test-key"
OPERATION_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def server_url(encoder):
    with loopback_server(create_app(make_settings(api_key=KEY), encoder=encoder)) as (host, port):
        yield f"http://{host}:{port}"


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def documented_operations(server_url: str) -> set[tuple[str, str]]:
    paths = httpx.get(f"{server_url}/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


def test_docs_list_every_operation_and_try_it_out_answers(browser, server_url):
    with server_page(browser, server_url) as (page, traffic):
        page.goto("/docs")
        page.locator(".opblock").first.wait_for(timeout=OPERATION_TIMEOUT_MS)
        methods = page.locator(".opblock .opblock-summary-method").all_inner_texts()
        paths = [path.get_attribute("data-path") for path in page.locator(".opblock .opblock-summary-path").all()]
        shown = set(zip(methods, paths, strict=True))
        assert len(shown) == len(methods)  # each operation once
        assert shown == documented_operations(server_url)

        classify = page.locator("#operations-classify-classify_classify_post")
        classify.locator(".opblock-summary").click()
        classify.locator(".try-out__btn").click()
        assert execute(classify) == "401"  # the example as shown, without the key: refused

        page.locator(".auth-wrapper .authorize").click()
        page.locator(".modal-ux input").fill(KEY)
        page.locator(".modal-ux .modal-btn.authorize").click()
        page.locator(".modal-ux .btn-done").click()
        assert execute(classify) == "200"
        assert '"results"' in classify.locator(".live-responses-table .response-col_description pre").first.inner_text()

    assert f"{server_url}/static/docs/swagger-ui-bundle.js" in traffic.seen  # the shipped copy, not a CDN's


def execute(operation) -> str:
    """Press Execute (clearing the last response first); the status Swagger UI shows."""
    clear = operation.locator(".btn-clear")
    if clear.count():
        clear.click()
    operation.locator(".execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=OPERATION_TIMEOUT_MS)
    return status.inner_text().strip()


def test_redoc_renders_the_operations(browser, server_url):
    with server_page(browser, server_url) as (page, traffic):
        page.goto("/redoc")
        heading = page.get_by_role("heading", name="Zero-shot classification of images").first
        heading.wait_for(timeout=OPERATION_TIMEOUT_MS)
        text = page.locator("redoc").inner_text()
        for summary in ("Order images along a difference text", "Search the index with weighted terms"):
            assert summary in text
    assert f"{server_url}/static/docs/redoc.standalone.js" in traffic.seen


def test_an_outside_request_fails_the_page_check(browser, server_url):
    """The check itself: a page that fetches from another origin is caught (and the fetch aborted)."""
    fetch_outside = "fetch('https://cdn.example.com/swagger-ui.css').then(() => 'loaded', () => 'aborted')"
    with pytest.raises(AssertionError, match="outside the server"), server_page(browser, server_url) as (page, _):
        page.goto("/health")
        assert page.evaluate(fetch_outside) == "aborted"
