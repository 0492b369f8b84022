"""`{"url": ...}` image inputs: off by default; only public http(s) targets, every hop checked."""

from __future__ import annotations

import gzip

import httpx
import pytest
import torch
from apptools import b64, make_settings, png, shape

from app.images import ImageLoader
from app.main import create_app
from app.url_fetch import is_public_address

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


# --- the URL guard, attack by attack -------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1/secret",
        "http://[::1]/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd12:3456::1]/",
        "http://2130706433/",
        "file:///etc/passwd",
        "gopher://img.example:70/_payload",
        "http://public.example@127.0.0.1/",
    ],
)
def test_a_redirect_chain_ending_anywhere_private_is_refused(make_client, encoder, location):
    """public → public → forbidden: the last hop is checked like the first, and never fetched."""
    web = FakeWeb(
        {"a.example": [PUBLIC], "b.example": ["1.1.1.1"]},
        {
            "a.example/start": httpx.Response(302, headers={"location": "http://b.example/next"}),
            "b.example/next": httpx.Response(307, headers={"location": location}),
        },
    )
    response = web.client(make_client, encoder).post("/embed", json={"images": [{"url": "http://a.example/start"}]})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("images[0]: ")
    assert [r.url.host for r in web.requests] == [PUBLIC, "1.1.1.1"]


def test_too_many_redirects_are_refused(make_client, encoder):
    web = FakeWeb({"loop.example": [PUBLIC]}, {"loop.example/": httpx.Response(302, headers={"location": "/"})})
    response = web.client(make_client, encoder).post("/embed", json={"images": [{"url": "http://loop.example/"}]})
    assert response.status_code == 422
    assert "redirects" in response.json()["detail"]
    assert len(web.requests) == 4  # the URL and MAX_REDIRECTS hops


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0x7f.0.0.1/",  # hex label
        "http://0x7f000001/",
        "http://0/",  # 0.0.0.0
        "http://127.1/",  # short form
        "http://017700000001/",  # octal
        "http://127.0.0.1./",  # trailing dot
    ],
)
def test_nonstandard_ipv4_spellings_are_refused_before_resolving(make_client, encoder, url):
    web = FakeWeb({}, {})
    resolved = []

    async def resolve(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]  # what inet_aton makes of every one of them

    settings = make_settings(allow_url_fetch=True)
    loader = ImageLoader.from_settings(settings, resolver=resolve, transport=httpx.MockTransport(web.handle))
    client = make_client(create_app(settings, encoder=encoder, image_loader=loader))
    response = client.post("/embed", json={"images": [{"url": url}]})
    assert response.status_code == 422, response.text
    assert "non-standard" in response.json()["detail"] or "invalid URL" in response.json()["detail"]
    assert resolved == [] and web.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://public.example@127.0.0.1/",  # userinfo: the host is 127.0.0.1
        "http://127.0.0.1\\@public.example/",  # parsed as userinfo + public host: refused for the userinfo
        "http://:@img.example/",
    ],
)
def test_userinfo_tricks_are_refused(make_client, encoder, url):
    web = FakeWeb({"public.example": [PUBLIC], "img.example": [PUBLIC]}, {})
    response = web.client(make_client, encoder).post("/embed", json={"images": [{"url": url}]})
    assert response.status_code == 422
    assert web.requests == []


def test_a_fragment_cannot_hide_the_host(make_client, encoder):
    """`http://127.0.0.1#@public.example/`: whatever parser reads it, the host checked is the host used."""
    web = FakeWeb({"public.example": [PUBLIC]}, {})
    response = web.client(make_client, encoder).post(
        "/embed", json={"images": [{"url": "http://127.0.0.1#@public.example/"}]}
    )
    assert response.status_code == 422
    assert "127.0.0.1" in response.json()["detail"]
    assert web.requests == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://img.example/", "ftp://img.example/a.png",
                                 "data:image/png;base64,AAAA", "javascript:alert(1)", "//img.example/a.png"])
def test_only_http_and_https_are_fetched(make_client, encoder, url):
    web = FakeWeb({"img.example": [PUBLIC]}, {})
    response = web.client(make_client, encoder).post("/embed", json={"images": [{"url": url}]})
    assert response.status_code == 422
    assert web.requests == []


def test_dns_rebinding_cannot_swap_the_address(make_client, encoder):
    """The name is resolved once per hop and the connection goes to that checked address, so a
    second answer (private) is never asked for, let alone used."""
    image = png(shape("green"))
    answers = iter([[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]])
    calls = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    web = FakeWeb({}, {"rebind.example/a.png": httpx.Response(200, content=image)})
    settings = make_settings(allow_url_fetch=True)
    loader = ImageLoader.from_settings(settings, resolver=rebinding, transport=httpx.MockTransport(web.handle))
    client = make_client(create_app(settings, encoder=encoder, image_loader=loader))
    response = client.post("/embed", json={"images": [{"url": "http://rebind.example/a.png"}]})
    assert response.status_code == 200, response.text
    assert calls == ["rebind.example"]
    (request,) = web.requests
    assert request.url.host == PUBLIC and request.headers["host"] == "rebind.example"


def test_https_keeps_the_name_for_sni_and_certificate_checks(make_client, encoder):
    image = png(shape("red"))
    web = FakeWeb({"img.example": [PUBLIC]}, {"img.example/a.png": httpx.Response(200, content=image)})
    response = web.client(make_client, encoder).post("/embed", json={"images": [{"url": "https://img.example/a.png"}]})
    assert response.status_code == 200, response.text
    (request,) = web.requests
    assert request.url.scheme == "https" and request.url.host == PUBLIC
    assert request.extensions["sni_hostname"] == "img.example"


BOMB = gzip.compress(b"\0" * 1_000_000)  # 1 MB of zeros in about 1 KB


def test_compressed_bodies_are_not_inflated(make_client, encoder):
    """Asked for identity; a gzip body (which could inflate 1000×) is refused unread."""
    web = FakeWeb(
        {"img.example": [PUBLIC]},
        {"img.example/a.png": httpx.Response(200, content=BOMB, headers={"content-encoding": "gzip"})},
    )
    response = web.client(make_client, encoder).post("/embed", json={"images": [{"url": "http://img.example/a.png"}]})
    assert response.status_code == 422
    assert "gzip" in response.json()["detail"]
    assert web.requests[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:7f00:1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "64:ff9b::7f00:1",  # NAT64 well-known prefix wrapping 127.0.0.1
        "64:ff9b::a00:1",  # ... wrapping 10.0.0.1
        "64:ff9b:1::a00:1",  # local-use NAT64
        "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo wrapping 127.0.0.1 (obfuscated client)
        "fc00::1",  # unique local fc00::/7
        "fd12:3456::1",
        "fe80::1",  # link-local
        "fe80::1%eth0",
        "fec0::1",  # site-local (deprecated)
        "ff02::1",  # multicast
        "::1",
        "2001:db8::1",  # documentation
        "0.0.0.0",
        "100.64.0.1",  # carrier-grade NAT
        "192.0.0.1",  # IETF protocol assignments
        "198.18.0.1",  # benchmarking
        "255.255.255.255",
        "2130706433",  # not an address at all: fail closed
        "0x7f.0.0.1",
        "",
    ],
)
def test_non_public_addresses(address):
    assert is_public_address(address) is False
