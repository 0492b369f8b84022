"""Request limits and bad image bytes: every one a 4xx that says what was wrong."""

from __future__ import annotations

import base64
import json

import pytest
from apptools import b64, png, png_header_only, shape, solid
from PIL import Image


def embed_images(client, *images):
    return client.post("/embed", json={"images": list(images)})


def test_body_over_the_limit_is_413(make_client):
    client = make_client(max_body_bytes=4096)
    big = {"texts": ["x" * 5000]}
    response = client.post("/embed", json=big)
    assert response.status_code == 413
    assert "4096" in response.json()["detail"]


def test_body_over_the_limit_without_content_length_is_413(make_client):
    client = make_client(max_body_bytes=4096)

    def chunks():
        yield b'{"texts": ["'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"]}'

    response = client.post("/embed", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        (b"", "empty image data"),
        (b"this is not an image at all", "not an image in a supported format"),
        (png(shape("red"))[:60], "images[0]:"),  # truncated after the header
        (png_header_only(0, 10), "images[0]:"),
    ],
)
def test_bad_image_bytes_are_422(client, blob, expected):
    response = embed_images(client, {"b64": base64.b64encode(blob).decode()})
    assert response.status_code == 422
    assert expected in response.json()["detail"]


def test_truncated_pixels_are_reported_as_corrupt(client):
    data = png(Image.effect_noise((64, 64), 60).convert("RGB"))
    response = embed_images(client, b64(shape("red")), {"b64": base64.b64encode(data[: len(data) // 2]).decode()})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("images[1]: corrupt image data")


@pytest.mark.parametrize("text", ["%%%", "abc", "YWJj=x", "data:image/png;base64"])
def test_bad_base64_is_422(client, text):
    response = embed_images(client, {"b64": text})
    assert response.status_code == 422
    assert "images[0]" in response.json()["detail"]


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        (5000, "images[0]: image is 5000×5000 = 25000000 pixels; at most 16777216 allowed"),
        (9000, "images[0]: image is 9000×9000 pixels; the longest side allowed is 8192"),
        (60000, "images[0]: image too large"),  # beyond Pillow's own bomb limit, caught first
    ],
)
def test_huge_dimensions_are_refused_before_decoding(client, side, expected):
    # A header claiming side×side in ~100 bytes: decoding would need up to ~10 GB.
    response = embed_images(client, {"b64": base64.b64encode(png_header_only(side, side)).decode()})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(expected)


def test_pixel_and_side_limits_come_from_settings(make_client):
    client = make_client(max_image_pixels=1000, max_image_side=50, max_request_pixels=1500)
    too_many = embed_images(client, b64(solid("red", 40)))
    assert too_many.status_code == 422 and "at most 1000" in too_many.json()["detail"]
    too_long = embed_images(client, b64(Image.new("RGB", (60, 2))))
    assert too_long.status_code == 422 and "longest side allowed is 50" in too_long.json()["detail"]
    in_total = embed_images(client, b64(solid("red", 30)), b64(solid("blue", 30)))
    assert in_total.status_code == 422 and "1500 pixels in total" in in_total.json()["detail"]


def test_item_and_text_limits_come_from_settings(make_client):
    client = make_client(max_items=3, max_text_chars=20)
    many = client.post("/embed", json={"texts": ["a", "b", "c", "d"]})
    assert many.status_code == 422 and many.json()["detail"] == "texts: 4 entries; at most 3 per request"
    images = client.post("/classify", json={"images": [b64(solid("red"))] * 4, "labels": ["red"]})
    assert images.status_code == 422 and "images: 4 entries" in images.json()["detail"]
    long = client.post("/embed", json={"texts": ["fine", "y" * 21]})
    assert long.status_code == 422 and long.json()["detail"] == "texts[1]: 21 characters; at most 20"
    labels = client.post("/classify", json={"images": [b64(solid("red"))], "labels": ["z" * 21]})
    assert labels.status_code == 422 and "labels[0]: 21 characters" in labels.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [{}, {"texts": [], "images": []}, {"images": [{}]}, {"images": [{"b64": "AAAA", "url": "http://x"}]}, []],
)
def test_malformed_embed_bodies_are_422(client, body):
    response = client.post("/embed", json=body)
    assert response.status_code == 422


def test_invalid_json_is_422_without_echoing_the_input(client):
    response = client.post(
        "/embed", content=b'{"texts": ["' + b"q" * 10000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert len(response.content) < 1000


def test_the_server_keeps_serving_after_bad_inputs(client):
    for blob in (b"", b"garbage", png_header_only(60000, 60000), png(shape("red"))[:60]):
        assert embed_images(client, {"b64": base64.b64encode(blob).decode()}).status_code == 422
    assert embed_images(client, b64(shape("red"))).status_code == 200


def test_other_formats_and_modes_are_accepted(client, encoder):
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 128))
    grey = Image.new("L", (16, 16), 128)
    buffer = __import__("io").BytesIO()
    solid("blue").save(buffer, format="JPEG")
    response = embed_images(client, b64(rgba), b64(grey), b64(buffer.getvalue()))
    assert response.status_code == 200
    assert len(response.json()["image_embeddings"]) == 3


@pytest.mark.parametrize(
    "body",
    [
        b'{"texts": ["\xff"]}',  # not UTF-8 at all
        b'{"texts": ["a\xed\xa0\x80b"]}',  # CESU-8: a surrogate encoded as UTF-8 bytes
        b'{"texts": ["a\\ud800b"]}',  # an unpaired surrogate escape
        b'{"texts": ["\\udc00"]}',
        b'{"texts": ["\\\\\\ud800"]}',  # an escaped backslash, then an unpaired surrogate escape
    ],
)
def test_json_bodies_must_be_valid_utf8(client, body):
    response = client.post("/embed", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "UTF-8" in response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/classify", '{"images": [IMAGE], "labels": ["a\\ud800", "b"]}'),
        ("/index/items", '{"items": [{"id": "s", "image": IMAGE, "metadata": {"x": "\\ud800"}}]}'),
        ("/index/items", '{"items": [{"id": "s", "image": IMAGE, "metadata": {"\\udc00": 1}}]}'),
    ],
)
def test_unpaired_surrogates_are_refused_on_every_json_route(client, path, body):
    body = body.replace("IMAGE", json.dumps(b64(shape("red"))))
    response = client.post(path, content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "UTF-8" in response.text
    assert client.get("/index").json()["size"] == 0


def test_surrogate_pairs_and_a_leading_bom_are_valid_utf8(client):
    for body in ('{"texts": ["smile \\ud83d\\ude00"]}', '\ufeff{"texts": ["a"]}', '{"texts": ["\\\\ud800"]}'):
        response = client.post("/embed", content=body.encode(), headers={"content-type": "application/json"})
        assert response.status_code == 200, (body, response.text)


def test_every_route_with_a_json_body_parses_it_strictly():
    """A new router without `route_class=StrictJSONRoute` would take CESU-8 and lone surrogates again."""
    import importlib
    import pkgutil

    from fastapi.routing import APIRoute

    import app.routes
    from app.json_body import StrictJSONRoute

    modules = [importlib.import_module(f"app.routes.{m.name}") for m in pkgutil.iter_modules(app.routes.__path__)]
    routes = [route for module in modules for route in module.router.routes if isinstance(route, APIRoute)]
    with_body = [route for route in routes if route.body_field is not None]
    assert len(with_body) >= 10
    assert [route.path for route in with_body if not isinstance(route, StrictJSONRoute)] == []
