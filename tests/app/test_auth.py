"""Optional Bearer API key and the per-key token-bucket rate limit."""

from __future__ import annotations

import time

import pytest
from apptools import make_settings
from pydantic import ValidationError

from app.main import create_app
from app.security import TokenBucket

KEY = "s3cret-key"
BODY = {"texts": ["a red circle"]}


def test_without_a_configured_key_no_header_is_needed(client):
    assert client.post("/embed", json=BODY).status_code == 200
    assert client.get("/info").json()["capabilities"]["auth"] is False


def test_with_a_key_model_endpoints_need_it(make_client):
    client = make_client(api_key=KEY)
    missing = client.post("/embed", json=BODY)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "API key" in missing.json()["detail"]
    wrong = client.post("/embed", json=BODY, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    prefix = client.post("/embed", json=BODY, headers={"Authorization": f"Bearer {KEY[:-1]}"})
    assert prefix.status_code == 401
    basic = client.post("/embed", json=BODY, headers={"Authorization": f"Basic {KEY}"})
    assert basic.status_code == 401
    assert client.post("/embed", json=BODY, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    for path in ("/classify", "/classify/difference", "/rank", "/embed/upload", "/classify/upload"):
        assert client.post(path, json={}).status_code == 401, path


OPEN_PATHS = {"/health", "/ready", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}


def test_operational_endpoints_stay_open(make_client):
    client = make_client(api_key=KEY)
    pages = ("/", "/static/playground/main.js", "/redoc", "/static/docs/redoc.standalone.js")  # for people: open too
    for path in ("/health", "/ready", "/metrics", "/docs", "/openapi.json", *pages):
        assert client.get(path).status_code == 200, path


def test_info_needs_the_key_when_one_is_set(make_client):
    """/info names the model (for a checkpoint, its path on the server) and the limits: clients only."""
    client = make_client(api_key=KEY)
    assert client.get("/info").status_code == 401
    info = client.get("/info", headers={"Authorization": f"Bearer {KEY}"})
    assert info.status_code == 200
    assert info.json()["capabilities"]["auth"] is True


def test_every_other_route_needs_the_key(make_client):
    """Walks every operation of the OpenAPI document, so a new endpoint without the dependency fails here."""
    client = make_client(api_key=KEY)
    guarded = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            if path in OPEN_PATHS:
                assert "security" not in operation, path
                continue
            assert operation.get("security") == [{"HTTPBearer": []}], f"{method.upper()} {path} is not protected"
            concrete = path.replace("{item_id}", "x").replace("{job_id}", "x")
            response = client.request(method, concrete, json={})
            assert response.status_code == 401, (method, concrete, response.status_code)
            guarded.append(path)
    assert {"/embed", "/classify", "/index/items", "/search", "/generate", "/info"} <= set(guarded)


def test_metrics_do_not_carry_request_content(make_client):
    client = make_client(api_key=KEY)
    client.post("/embed", json={"texts": ["a very secret sentence"]}, headers={"Authorization": f"Bearer {KEY}"})
    text = client.get("/metrics").text
    assert "secret" not in text and KEY not in text


def test_open_metrics_cannot_be_grown_by_clients(make_client):
    """Any token is a valid HTTP method: made-up ones must not each add a metrics series."""
    client = make_client(api_key=KEY)
    for i in range(50):
        client.request(f"X{i}", "/health")
        client.get(f"/no-such-path-{i}")
    text = client.get("/metrics").text
    assert "X1" not in text and "no-such-path" not in text
    assert 'method="other"' in text and 'route="unmatched"' in text


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Bearer nope",
        f"Bearer {KEY[:-1]}",
        f"Bearer {KEY}x",
        f"Bearer {KEY} {KEY}",
        f"Basic {KEY}",
        f"Token {KEY}",
        f"{KEY}",
        f"Bearer{KEY}",
        f"Bearer\t{KEY}",
        f"Bearer {KEY.upper()}",
        "Bearer " + "ü" * 8,  # non-ASCII, wrong
    ],
)
def test_wrong_authorization_headers_are_401(make_client, authorization):
    client = make_client(api_key=KEY)
    response = client.post("/embed", json=BODY, headers={"Authorization": authorization.encode("utf-8")})
    assert response.status_code == 401, authorization
    assert KEY not in response.text


@pytest.mark.parametrize("authorization", [f"bearer {KEY}", f"BEARER {KEY}", f"Bearer {KEY} ", f"Bearer  {KEY}"])
def test_the_scheme_is_case_insensitive_and_whitespace_is_not_part_of_the_key(make_client, authorization):
    """RFC 9110: auth schemes are case-insensitive, and a field value's surrounding whitespace is
    not part of it (servers strip it from the wire anyway)."""
    client = make_client(api_key=KEY)
    assert client.post("/embed", json=BODY, headers={"Authorization": authorization}).status_code == 200


@pytest.mark.parametrize(
    ("params", "cookies", "headers"),
    [
        ({"api_key": KEY}, {}, {}),
        ({"access_token": KEY}, {}, {}),
        ({"key": KEY, "Authorization": f"Bearer {KEY}"}, {}, {}),
        ({}, {"Authorization": f"Bearer {KEY}"}, {}),
        ({}, {"api_key": KEY}, {}),
        ({}, {}, {"X-API-Key": KEY}),
        ({}, {}, {"Proxy-Authorization": f"Bearer {KEY}"}),
    ],
)
def test_the_key_counts_only_in_the_authorization_header(make_client, params, cookies, headers):
    client = make_client(api_key=KEY)
    client.cookies.update(cookies)
    assert client.post("/embed", json=BODY, params=params, headers=headers).status_code == 401


@pytest.mark.parametrize("key", ["", KEY + "\n", " " + KEY])
def test_an_unusable_configured_key_is_refused_at_startup(key):
    """An empty key would lock everyone out, and one with a trailing newline (from a key file)
    can never be sent: both stop the server from starting, with the reason."""
    with pytest.raises(ValidationError, match="PCCLIP_API_KEY must be non-empty"):
        make_settings(api_key=key)


def test_a_non_ascii_key_matches_its_utf8_bytes(make_client):
    key = "clé-ключ-🔑"
    client = make_client(api_key=key)
    assert client.post("/embed", json=BODY, headers={"Authorization": f"Bearer {key}".encode()}).status_code == 200
    wrong = "clé-ключ-🔒"
    assert client.post("/embed", json=BODY, headers={"Authorization": f"Bearer {wrong}".encode()}).status_code == 401


def test_a_megabyte_authorization_header_is_a_fast_4xx(make_client):
    client = make_client(api_key=KEY)
    started = time.monotonic()
    response = client.post("/embed", json=BODY, headers={"Authorization": "Bearer " + "k" * (1 << 20)})
    assert response.status_code == 401
    assert time.monotonic() - started < 2


def test_a_megabyte_authorization_header_over_the_wire_is_a_4xx(encoder):
    """The HTTP server itself refuses oversized header blocks before the app sees them."""
    from test_multipart_limits import exchange, loopback_server

    with loopback_server(create_app(make_settings(api_key=KEY), encoder=encoder)) as address:
        head = f"POST /embed HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {'k' * (1 << 20)}\r\n\r\n".encode()
        status, _, elapsed = exchange(address, head)
    assert 400 <= status < 500
    assert elapsed < 5


@pytest.mark.parametrize("given", ["", "k", KEY[:-1], KEY, KEY * 100, "x" * 100_000])
def test_keys_are_compared_as_fixed_length_digests(monkeypatch, given):
    """The comparison sees two 32-byte digests whatever the length of the key sent, so its time
    cannot reveal the expected key's length (compare_digest on unequal lengths returns at once)."""
    from app import security

    seen = []
    real = security.hmac.compare_digest

    def spy(a, b):
        seen.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    assert security.key_matches(given.encode(), KEY.encode()) is (given == KEY)
    assert seen == [(32, 32)]


def test_the_request_path_uses_the_digest_comparison(make_client, monkeypatch):
    from app import security

    calls = []
    real = security.key_matches
    monkeypatch.setattr(security, "key_matches", lambda given, expected: calls.append(given) or real(given, expected))
    client = make_client(api_key=KEY)
    client.post("/embed", json=BODY, headers={"Authorization": "Bearer guess"})
    client.post("/embed", json=BODY, headers={"Authorization": f"Bearer {KEY}"})
    assert calls == [b"guess", KEY.encode()]


def test_openapi_declares_the_bearer_scheme(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/classify"]["post"]["security"] == [{"HTTPBearer": []}]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limited_client(make_client, encoder, clock: FakeClock, **settings):
    """A client of an app whose rate limiter reads `clock`: time passes only when a test says so,
    however long the requests take on a loaded machine."""
    return make_client(create_app(make_settings(**settings), encoder=encoder, clock=clock))


def test_rate_limit_answers_429_with_retry_after(make_client, encoder):
    clock = FakeClock()
    client = limited_client(make_client, encoder, clock, api_key=KEY, rate_limit=0.5, rate_burst=2)
    headers = {"Authorization": f"Bearer {KEY}"}
    assert [client.post("/embed", json=BODY, headers=headers).status_code for _ in range(2)] == [200, 200]
    limited = client.post("/embed", json=BODY, headers=headers)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"  # one token per 2 s
    assert "rate limit" in limited.text
    clock.now += 1.5
    assert client.post("/embed", json=BODY, headers=headers).headers["retry-after"] == "1"  # 0.5 s, rounded up
    assert client.get("/health").status_code == 200  # not limited
    clock.now += 0.5
    assert client.post("/embed", json=BODY, headers=headers).status_code == 200


def test_wrong_keys_do_not_spend_the_right_keys_tokens(make_client, encoder):
    client = limited_client(make_client, encoder, FakeClock(), api_key=KEY, rate_limit=0.5, rate_burst=2)
    guess = {"Authorization": "Bearer guess"}
    statuses = [client.post("/embed", json=BODY, headers=guess).status_code for _ in range(4)]
    assert statuses == [401, 401, 429, 429]  # guessing is rate-limited per client address
    assert client.post("/embed", json=BODY, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert client.post("/embed", json=BODY).status_code == 429  # still guessing (no key at all)


def test_without_auth_the_limit_applies_per_client(make_client, encoder):
    client = limited_client(make_client, encoder, FakeClock(), rate_limit=0.5, rate_burst=1)
    assert client.post("/embed", json=BODY).status_code == 200
    assert client.post("/embed", json=BODY).status_code == 429


def test_token_bucket_refills_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a") == pytest.approx(0.5)
    assert bucket.take("b") == 0.0  # keys are independent
    clock.now += 0.5
    assert bucket.take("a") == 0.0
    assert bucket.take("a") == pytest.approx(0.5)
    clock.now += 10
    assert [bucket.take("a") for _ in range(4)][-1] > 0  # refills only up to the burst
