"""Helpers for the browser tests: Debian's Chromium driven by Playwright, kept off the network.

The browser is the system's (`apt-get install chromium`; `.ci/run` installs it), never one that
`playwright install` downloads. Every request a page makes is routed through `Traffic`: those to
the server under test go through, all others are recorded and aborted, so a test can assert the
page needed nothing from outside.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing of Chromium's own that phones home (updates, sync, field trials, QUIC probes).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1100, "height": 760}


@contextmanager
def chromium() -> Iterator:
    """A Playwright Browser on the system's Chromium; fails with the fix when it is missing."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Traffic:
    """Routes a browser context's requests: the server's pass, every other origin's is aborted
    and kept in `outside`. Page errors (uncaught exceptions, CSP refusals) are kept in `errors`."""

    def __init__(self, context, server_url: str) -> None:
        self.server = origin(server_url)
        self.seen: list[str] = []
        self.outside: list[str] = []
        self.errors: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route) -> None:
        url = route.request.url
        self.seen.append(url)
        if origin(url) == self.server:
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def watch(self, page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("console", self._console)

    def _console(self, message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(message.text)


@contextmanager
def server_page(browser, server_url: str) -> Iterator[tuple]:
    """A fresh context and page on `server_url`; (page, traffic). Fails when the page went outside."""
    context = browser.new_context(viewport=VIEWPORT, base_url=server_url)
    traffic = Traffic(context, server_url)
    page = context.new_page()
    traffic.watch(page)
    try:
        yield page, traffic
        assert traffic.outside == [], f"the page requested outside the server: {traffic.outside}"
        assert traffic.errors == [], f"errors on the page: {traffic.errors}"
    finally:
        context.close()
