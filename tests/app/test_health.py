"""/health, /ready, /info and /metrics — including the time before the model is loaded."""

from __future__ import annotations

import threading
import time

import pytest
from apptools import make_settings

from app.generation.generator import UNSET_REASON
from app.index import IndexStore
from app.main import create_app


def wait_ready(client, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/ready")
        model, index = response.json()["model"]["state"], response.json()["index"]["state"]
        if model == "failed" or (model == "ready" and index != "loading"):
            return response
        time.sleep(0.05)
    pytest.fail("model still loading")


def test_ready_is_503_until_the_model_is_loaded(encoder, make_client):
    release = threading.Event()

    def slow_loader(settings):
        release.wait(10)
        return encoder

    client = make_client(create_app(make_settings(), loader=slow_loader))

    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["model"]["state"] == "loading"
    assert "loading" in ready.json()["detail"]
    refused = client.post("/embed", json={"texts": ["a cat"]})
    assert refused.status_code == 503
    assert "loading" in refused.json()["detail"]
    assert client.get("/info").status_code == 503

    release.set()
    ready = wait_ready(client)
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "model": {"state": "ready", "detail": None},
        "index": {"state": "ready", "detail": None},
        "generator": {"state": "unavailable", "detail": UNSET_REASON},
        "detail": None,
    }
    assert client.post("/embed", json={"texts": ["a cat"]}).status_code == 200


def test_a_model_that_fails_to_load_is_reported_and_the_server_keeps_answering(make_client):
    # The real default loader, on a spec that names no model.
    client = make_client(create_app(make_settings(model="no-such-model")))
    ready = wait_ready(client)
    assert ready.status_code == 503
    body = ready.json()
    assert body["model"]["state"] == "failed"
    assert "SpecError" in body["detail"] and "no-such-model" in body["detail"]
    assert "expected one of" in body["detail"]  # the loader's message lists the valid forms
    assert client.get("/health").status_code == 200
    refused = client.post("/classify", json={"images": [{"b64": "AA=="}], "labels": ["a"]})
    assert refused.status_code == 503
    assert "failed to load" in refused.json()["detail"]


def test_info_describes_the_served_model(client, encoder):
    info = client.get("/info").json()
    assert info["spec"] == encoder.spec
    assert info["fingerprint"] == encoder.fingerprint
    assert info["embed_dim"] == encoder.embed_dim
    assert info["device"] == "cpu"
    assert info["dtype"] == "float32"
    assert isinstance(info["notes"], list)
    assert info["capabilities"]["generation"] is False
    assert info["capabilities"]["classify"] is True
    assert info["capabilities"]["auth"] is False
    assert info["limits"]["max_items"] == make_settings().max_items


def test_metrics_count_requests_by_route_and_status_and_batches(client):
    client.post("/embed", json={"texts": ["one"]})
    client.post("/embed", json={"texts": ["two"]})
    client.post("/embed", json={})  # 422
    client.get("/health")
    text = client.get("/metrics").text
    assert 'pcclip_requests_total{method="POST",route="/embed",status="200"} 2.0' in text
    assert 'pcclip_requests_total{method="POST",route="/embed",status="422"} 1.0' in text
    assert 'pcclip_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert 'pcclip_batch_size_count{kind="text"} 2.0' in text
    assert "pcclip_queue_depth 0.0" in text
    assert 'pcclip_request_duration_seconds_count{method="POST",route="/embed"} 3.0' in text


def test_ready_counts_the_index_and_generator_only_when_required(make_client, encoder, tmp_path):
    held = IndexStore.open(tmp_path, fingerprint=encoder.fingerprint, embed_dim=encoder.embed_dim)  # another owner
    try:
        client = make_client(index_dir=str(tmp_path))
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["detail"] is None
        assert ready.json()["index"]["state"] == "failed"
        assert "open in another process" in ready.json()["index"]["detail"]
        for require, words in (("index", "open in another process"), ("generator", "PCCLIP_SDXL_MODEL")):
            required = client.get("/ready", params={"require": require})
            assert required.status_code == 503 and required.json()["ready"] is False
            assert words in required.json()["detail"]
        both = client.get("/ready", params=[("require", "generator"), ("require", "index")])
        assert both.status_code == 503 and "PCCLIP_SDXL_MODEL" in both.json()["detail"]  # the first named
        unknown = client.get("/ready", params={"require": "everything"})
        assert unknown.status_code == 422 and "require" in unknown.text
    finally:
        held.close()
