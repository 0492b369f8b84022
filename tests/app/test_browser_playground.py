"""The playground at `/`, driven end to end in a real browser (Debian's Chromium).

The server is uvicorn on 127.0.0.1 with an API key, the tiny-base model, an index and the tiny
random SDXL; each panel is used as a person would (files uploaded through the file inputs) and
what it shows is checked against the API's own answer to the same request. A request to any
other origin fails the test (browsertools.server_page). The compare test saves the screenshot
README shows (docs/playground.png).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import pytest
from apptools import make_settings, png, shape
from browsertools import chromium, server_page
from playwright.sync_api import expect
from test_multipart_limits import loopback_server

from app.main import create_app
from models.generation.pipeline import pipeline_view

KEY = "playground-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "playground.png"
SLOW_MS = 60_000  # a model call on a busy machine; the checks never depend on speed
COLOURS = ("red", "blue", "green")


@pytest.fixture(scope="module")
def server_url(encoder, sdxl_dir, sdxl_pipe):
    settings = make_settings(api_key=KEY, sdxl_model=str(sdxl_dir))
    app = create_app(settings, encoder=encoder, sdxl_loader=lambda _settings: pipeline_view(sdxl_pipe))
    with loopback_server(app) as (host, port):
        url = f"http://{host}:{port}"
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/ready").status_code != 200:
            assert time.monotonic() < deadline, httpx.get(f"{url}/ready").text
            time.sleep(0.1)
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """red.png, blue.png, green.png: a filled square of that colour on white."""
    folder = tmp_path_factory.mktemp("playground-images")
    paths = {}
    for colour in COLOURS:
        paths[colour] = folder / f"{colour}.png"
        paths[colour].write_bytes(png(shape(colour, "square")))
    return paths


def b64(path: Path) -> dict:
    return {"b64": base64.b64encode(path.read_bytes()).decode()}


def api(server_url: str, path: str, body: dict) -> dict:
    response = httpx.post(f"{server_url}/{path}", json=body, headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def page(browser, server_url):
    """The playground, with the API key entered."""
    with server_page(browser, server_url) as (page, _traffic):
        page.goto("/")
        page.fill("#api-key", KEY)
        page.press("#api-key", "Tab")  # `change`
        expect(page.locator("#server-status")).to_contain_text("Connected: model tiny-base", timeout=SLOW_MS)
        yield page


def shown_bars(container) -> list[tuple[str, float]]:
    bars = container.locator(".bar")
    return [(bar.locator(".label").inner_text(), float(bar.locator(".value").inner_text())) for bar in bars.all()]


def assert_scores(shown: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    assert [label for label, _ in shown] == [label for label, _ in expected]
    for (_, value), (_, score) in zip(shown, expected, strict=True):
        assert value == pytest.approx(score, abs=5e-4 + 1e-9)  # shown with 3 decimals


def test_the_key_field_appears_when_the_server_needs_one(browser, server_url):
    with server_page(browser, server_url) as (page, _traffic):
        page.goto("/")
        expect(page.locator("#key-field")).to_be_visible()
        expect(page.locator("#server-status")).to_contain_text("needs an API key: missing or wrong API key")
        page.fill("#api-key", "not-the-key")
        page.press("#api-key", "Tab")
        expect(page.locator("#server-status")).to_contain_text("missing or wrong API key")
        page.fill("#api-key", KEY)
        page.press("#api-key", "Tab")
        expect(page.locator("#server-status")).to_contain_text("Connected: model tiny-base")
        expect(page.locator("#server-status")).to_contain_text("generation ready")


def test_compare_scores_each_text_and_flags_a_reversed_pair(page, server_url, images):
    form = page.locator("#compare")
    texts = ["the first image is redder than the second", "the first image is bluer than the second"]
    flags = []
    for first, second in (("red", "blue"), ("blue", "red")):
        form.locator("[name=first]").set_input_files(images[first])
        form.locator("[name=second]").set_input_files(images[second])
        form.locator("[name=texts]").fill("\n".join(texts))
        form.locator("button[type=submit]").click()
        expect(form.locator(".result .strip figcaption").first).to_have_text(f"first: {first}.png", timeout=SLOW_MS)
        body = {"pairs": [{"first": b64(images[first]), "second": b64(images[second])}], "texts": texts}
        result = api(server_url, "classify/difference", body)["results"][0]
        assert_scores(shown_bars(form), list(zip(texts, result["scores"], strict=True)))
        assert form.locator(".bar.best .label").inner_text() == result["best"]
        flag = form.locator(".flag").inner_text()
        assert flag.startswith("Reads better reversed" if result["reversed"] else "Reads as given"), flag
        flags.append(result["reversed"])
        if len(flags) == 1:
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=SCREENSHOT)
    assert flags[0] != flags[1]  # a swapped pair negates every score: exactly one order reads reversed


def test_classify_with_a_comparative_and_alpha(page, server_url, images):
    page.click("[data-panel=classify]")
    form = page.locator("#classify")
    form.locator("[name=images]").set_input_files([images["red"], images["blue"]])
    form.locator("[name=labels]").fill("red\nblue\ngreen")
    form.locator("[data-add=comparative]").click()
    comparative = {"first": "red", "second": "blue", "text": "the red one is warmer, while the blue one is cooler"}
    for name, value in comparative.items():
        form.locator(f".entry [name={name}]").fill(value)
    form.locator("[name=alpha]").fill("0.5")
    form.locator("button[type=submit]").click()
    expect(form.locator(".classified")).to_have_count(2, timeout=SLOW_MS)

    body = {
        "images": [b64(images["red"]), b64(images["blue"])],
        "labels": ["red", "blue", "green"],
        "template": "This is a photo of a {}",
        "comparatives": [comparative],
        "alpha": 0.5,
    }
    results = api(server_url, "classify", body)["results"]
    for row, result in zip(form.locator(".classified").all(), results, strict=True):
        assert_scores(shown_bars(row), [(entry["label"], entry["score"]) for entry in result["labels"]])


def test_rank_shows_the_images_in_order(page, server_url, images):
    page.click("[data-panel=rank]")
    form = page.locator("#rank")
    order = [images["blue"], images["red"], images["green"]]
    form.locator("[name=images]").set_input_files(order)
    text = "the first image is more red than the second image"
    form.locator("[name=text]").fill(text)
    form.locator("button[type=submit]").click()
    expect(form.locator(".ranked li")).to_have_count(3, timeout=SLOW_MS)

    ranked = api(server_url, "rank", {"images": [b64(path) for path in order], "text": text})["results"]
    shown = [caption.split(" · ") for caption in form.locator(".ranked figcaption").all_inner_texts()]
    assert [name for name, _ in shown] == [order[entry["index"]].name for entry in ranked]
    assert [float(score) for _, score in shown] == pytest.approx([entry["score"] for entry in ranked], abs=6e-4)


def test_search_with_two_terms_shows_thumbnails_and_contributions(page, server_url, images):
    page.click("[data-panel=search]")
    form = page.locator("#search")
    form.locator("[name=items]").set_input_files([images[colour] for colour in COLOURS])
    form.locator("[data-action=add]").click()
    expect(form.locator(".added")).to_contain_text("Added 3, replaced 0: the index holds 3", timeout=SLOW_MS)

    form.locator("[data-add=term]").click()  # the first term is there: text "a red square", weight 1
    second = form.locator(".entry").nth(1)
    second.locator("select").select_option("id")
    second.locator(".term-value").fill("blue.png")
    second.locator(".term-weight").fill("0.5")
    form.locator("button[type=submit]").click()
    expect(form.locator(".hit")).to_have_count(2, timeout=SLOW_MS)  # the id term's own item is left out

    terms = [{"text": "a red square", "weight": 1.0}, {"id": "blue.png", "weight": 0.5}]
    hits = api(server_url, "search", {"terms": terms, "k": 8})["hits"]
    for card, hit in zip(form.locator(".hit").all(), hits, strict=True):
        assert card.locator("figcaption").inner_text() == f"{hit['id']} · {hit['score']:.3f}"
        labels = ['text "a red square"', 'id "blue.png"']
        assert_scores(shown_bars(card), list(zip(labels, hit["contributions"], strict=True)))
        thumbnail = card.locator("img")
        assert thumbnail.get_attribute("src").startswith("blob:")  # fetched with the key from /index/items/{id}/image
        expect(thumbnail).to_have_js_property("naturalWidth", 64)


def test_generate_streams_progress_to_100_percent_and_shows_the_image(page):
    page.click("[data-panel=generate]")
    form = page.locator("#generate")
    expect(form.locator(".availability")).to_contain_text("Text encoders:")
    form.locator("[name=prompt]").fill("a photo of a forest")
    form.locator(".edit-text").fill("snowier")
    for name, value in {"steps": "3", "width": "32", "height": "48", "seed": "5"}.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator("button[type=submit]").click()
    expect(form.locator(".progress .percent")).to_have_text("100 %", timeout=SLOW_MS)  # set by the event stream
    expect(form.locator(".progress .state")).to_have_text("done")
    generated = form.locator("img.generated")
    expect(generated).to_have_js_property("naturalWidth", 32)
    expect(generated).to_have_js_property("naturalHeight", 48)
    expect(form.locator(".result")).to_contain_text("seed 5")


def test_errors_are_the_servers_message(page, images):
    page.click("[data-panel=classify]")
    form = page.locator("#classify")
    form.locator("[name=images]").set_input_files(images["red"])
    form.locator("[name=template]").fill("a photo")
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).to_have_text('template: must contain "{}" where the label goes', timeout=SLOW_MS)

    page.click("[data-panel=search]")
    form = page.locator("#search")
    form.locator(".term-weight").fill("0")
    form.locator("button[type=submit]").click()  # a 422 whose detail is a list of {loc, msg}
    expect(form.locator(".error")).to_contain_text("weight must not be 0", timeout=SLOW_MS)


def test_without_sdxl_weights_the_generate_panel_says_so(browser, encoder):
    with (
        loopback_server(create_app(make_settings(), encoder=encoder)) as (host, port),
        server_page(browser, f"http://{host}:{port}") as (page, _traffic),
    ):
        page.goto("/")
        expect(page.locator("#server-status")).to_contain_text("no generation", timeout=SLOW_MS)
        expect(page.locator("#key-field")).to_be_hidden()  # this server needs no key
        page.click("[data-panel=generate]")
        form = page.locator("#generate")
        expect(form.locator(".availability")).to_contain_text("Generation is not available on this server")
        expect(form.locator(".availability")).to_contain_text("PCCLIP_SDXL_MODEL")
        form.locator("button[type=submit]").click()
        expect(form.locator(".error")).to_contain_text("no SDXL weights are configured", timeout=SLOW_MS)
