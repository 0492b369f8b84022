"""`{"url": ...}` image inputs: off by default; only public http(s) targets, every hop checked."""

from __future__ import annotations

import httpx
import pytest
import torch
from apptools import b64, make_settings, png, shape

from app.images import ImageLoader, is_public_address
from app.main import create_app

PUBLIC = "93.184.215.14"


def test_urls_are_refused_unless_enabled(client):
    response = client.post("/embed", json={"images": [{"url": "https://example.com/cat.png"}]})
    assert response.status_code == 422
    assert "disabled" in response.json()["detail"] and "PCCLIP_ALLOW_URL_FETCH" in response.json()["detail"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.com/a.png", "only http and https"),
        ("gopher://127.0.0.1:70/", "only http and https"),
        ("http://127.0.0.1/a.png", "127.0.0.1"),
        ("http://127.1.2.3:8000/a.png", "127.1.2.3"),
        ("http://localhost:8000/a.png", "resolves to"),
        ("http://10.0.0.5/a.png", "10.0.0.5"),
        ("http://192.168.1.1/a.png", "192.168.1.1"),
        ("http://172.16.0.1/a.png", "172.16.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://0.0.0.0/", "0.0.0.0"),
        ("http://[::1]/a.png", "::1"),
        ("http://[::ffff:127.0.0.1]/a.png", "::ffff:127.0.0.1"),
        ("http://[fe80::1]/a.png", "fe80::1"),
        ("http://100.64.0.1/a.png", "100.64.0.1"),
        ("http://user:pw@example.com/a.png", "credentials"),
        ("not a url", "only http and https"),
    ],
)
def test_forbidden_targets_are_refused(make_client, url, expected):
    client = make_client(allow_url_fetch=True)
    response = client.post("/embed", json={"images": [{"url": url}]})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("images[0]: ")
    assert expected in response.json()["detail"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("169.254.1.1", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:0001::", False),  # 6to4 wrapping 127.0.0.1
        ("fc00::1", False),
        ("::", False),
    ],
)
def test_is_public_address(address, public):
    assert is_public_address(address) is public


class FakeWeb:
    """Resolver + transport for a small pretend internet, so fetching is tested offline."""

    def __init__(self, dns: dict[str, list[str]], pages: dict[str, httpx.Response]) -> None:
        self.dns = dns
        self.pages = pages
        self.requests: list[httpx.Request] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        return self.dns.get(host) or ([host] if host[0].isdigit() or ":" in host else [])

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.pages.get(f"{request.headers['host']}{request.url.path}", httpx.Response(404))

    def client(self, make_client, encoder, **settings):
        """A started app whose URL fetcher sees only this pretend internet."""
        settings = make_settings(allow_url_fetch=True, **settings)
        loader = ImageLoader.from_settings(settings, resolver=self.resolve, transport=httpx.MockTransport(self.handle))
        return make_client(create_app(settings, encoder=encoder, image_loader=loader))


def test_a_public_url_is_fetched_from_the_checked_address(make_client, encoder):
    image = png(shape("red"))
    web = FakeWeb({"img.example": [PUBLIC]}, {"img.example/red.png": httpx.Response(200, content=image)})
    client = web.client(make_client, encoder)
    via_url = client.post("/embed", json={"images": [{"url": "http://img.example/red.png"}]})
    assert via_url.status_code == 200, via_url.text
    via_b64 = client.post("/embed", json={"images": [b64(image)]})
    assert torch.allclose(
        torch.tensor(via_url.json()["image_embeddings"]), torch.tensor(via_b64.json()["image_embeddings"])
    )
    (request,) = web.requests
    assert request.url.host == PUBLIC  # connected to the address that was checked
    assert request.headers["host"] == "img.example"


def test_a_name_with_any_private_address_is_refused(make_client, encoder):
    web = FakeWeb({"mixed.example": [PUBLIC, "10.0.0.7"]}, {})
    response = web.client(make_client, encoder).post("/embed", json={"images": [{"url": "http://mixed.example/a.png"}]})
    assert response.status_code == 422
    assert "10.0.0.7" in response.json()["detail"]
    assert web.requests == []


def test_a_redirect_to_a_private_address_is_refused(make_client, encoder):
    web = FakeWeb(
        {"img.example": [PUBLIC], "internal.example": ["192.168.0.10"]},
        {"img.example/a.png": httpx.Response(302, headers={"location": "http://internal.example/secret"})},
    )
    response = web.client(make_client, encoder).post("/embed", json={"images": [{"url": "http://img.example/a.png"}]})
    assert response.status_code == 422
    assert "192.168.0.10" in response.json()["detail"]
    assert len(web.requests) == 1


def test_a_public_redirect_is_followed(make_client, encoder):
    image = png(shape("blue"))
    web = FakeWeb(
        {"a.example": [PUBLIC], "b.example": ["1.1.1.1"]},
        {
            "a.example/x": httpx.Response(301, headers={"location": "http://b.example/y.png"}),
            "b.example/y.png": httpx.Response(200, content=image),
        },
    )
    response = web.client(make_client, encoder).post("/embed", json={"images": [{"url": "http://a.example/x"}]})
    assert response.status_code == 200, response.text
    assert [r.url.host for r in web.requests] == [PUBLIC, "1.1.1.1"]


async def _chunks(chunk: bytes, count: int):
    for _ in range(count):
        yield chunk  # streamed: no Content-Length to check up front


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (httpx.Response(404), "HTTP 404"),
        (httpx.Response(200, content=b"x" * 5000), "5000 bytes; at most 4096 are fetched"),
        (httpx.Response(200, content=_chunks(b"x" * 1000, 5)), "over 4096 bytes; at most 4096 are fetched"),
        (httpx.Response(200, content=b"<html>not an image</html>"), "not an image"),
    ],
)
def test_bad_fetches_are_422(make_client, encoder, page, expected):
    web = FakeWeb({"img.example": [PUBLIC]}, {"img.example/a.png": page})
    client = web.client(make_client, encoder, url_max_bytes=4096)
    response = client.post("/embed", json={"images": [{"url": "http://img.example/a.png"}]})
    assert response.status_code == 422
    assert expected in response.json()["detail"]
