"""Optional Bearer API key and the per-key token-bucket rate limit."""

from __future__ import annotations

import pytest

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


def test_operational_endpoints_stay_open(make_client):
    client = make_client(api_key=KEY)
    for path in ("/health", "/ready", "/info", "/metrics", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    assert client.get("/info").json()["capabilities"]["auth"] is True


def test_openapi_declares_the_bearer_scheme(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/classify"]["post"]["security"] == [{"HTTPBearer": []}]


def test_rate_limit_answers_429_with_retry_after(make_client):
    client = make_client(api_key=KEY, rate_limit=0.5, rate_burst=2)
    headers = {"Authorization": f"Bearer {KEY}"}
    assert [client.post("/embed", json=BODY, headers=headers).status_code for _ in range(2)] == [200, 200]
    limited = client.post("/embed", json=BODY, headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) == 2  # one token per 2 s
    assert "rate limit" in limited.json()["detail"]
    assert client.get("/health").status_code == 200  # not limited


def test_wrong_keys_do_not_spend_the_right_keys_tokens(make_client):
    client = make_client(api_key=KEY, rate_limit=0.5, rate_burst=1)
    for _ in range(3):
        assert client.post("/embed", json=BODY, headers={"Authorization": "Bearer guess"}).status_code == 401
    assert client.post("/embed", json=BODY, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_without_auth_the_limit_applies_per_client(make_client):
    client = make_client(rate_limit=0.5, rate_burst=1)
    assert client.post("/embed", json=BODY).status_code == 200
    assert client.post("/embed", json=BODY).status_code == 429


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


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
