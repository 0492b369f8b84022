"""A server started on damaged files stays up and says why it is not ready.

For each damaged file — a finetuned checkpoint, the tiny-base weights, each file of the search
index — `/health` answers 200, `/ready` 503 with a `detail` naming the problem and the file (for
the index: `/ready?require=index`; the model API still serves), and nothing is served from
garbage. One case runs a real `pcclip serve` process.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from apptools import make_settings
from fastapi.testclient import TestClient

from app.index import AnnParams, IndexStore, NewItem
from app.main import create_app
from models import save_checkpoint, tiny
from models.checkpoint import METADATA_FILE, WEIGHTS_FILE
from quality.server import ServerFailed, loopback_server, wait_ready

ROOT = Path(__file__).resolve().parents[2]


def flip_bit(path: Path, at: float = 0.6) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x04
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def ready_when_settled(client: TestClient, timeout: float = 30.0) -> httpx.Response:
    """/ready once the model failed, or loaded and the index opened or failed."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/ready")
        body = response.json()
        if body["model"]["state"] == "failed" or (
            body["model"]["state"] == "ready" and body["index"]["state"] != "loading"
        ):
            return response
        assert time.monotonic() < deadline, f"still loading after {timeout} s: {body}"
        time.sleep(0.05)


def assert_refused(response: httpx.Response, component: str, *words: str) -> None:
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and body[component]["state"] == "failed"
    for word in words:
        assert word in body["detail"], f"{word!r} not in {body['detail']!r}"


# --- the model -------------------------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    """A checkpoint folder over tiny-base (its damage is found before the base is built)."""
    tensors = {"text.transformer.encoder.layer.0.output.dense.bias": torch.zeros(384)}
    return save_checkpoint(tmp_path / "ckpt", tensors, base="tiny-base", base_fingerprint="0" * 64, training={})


CHECKPOINT_FAULTS = {
    "weights truncated": (WEIGHTS_FILE, truncate, "does not match metadata"),
    "weights bit flip": (WEIGHTS_FILE, flip_bit, "does not match metadata"),
    "metadata garbage": (METADATA_FILE, lambda p: p.write_text('{"format": "pcclip-che'), "corrupt metadata"),
}


@pytest.mark.parametrize("fault", CHECKPOINT_FAULTS)
def test_a_damaged_checkpoint_keeps_the_server_up_and_unready(checkpoint, fault):
    name, damage, words = CHECKPOINT_FAULTS[fault]
    damage(checkpoint / name)
    with TestClient(create_app(make_settings(model=str(checkpoint)))) as client:
        assert client.get("/health").status_code == 200
        assert_refused(ready_when_settled(client), "model", words, str(checkpoint))
        assert client.post("/embed", json={"texts": ["a red circle"]}).status_code == 503
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize("damage", [flip_bit, truncate], ids=["bit flip", "truncated"])
def test_damaged_base_weights_keep_the_server_up_and_unready(tmp_path, monkeypatch, damage):
    folder = tmp_path / "tiny-base"
    shutil.copytree(tiny.TINY_BASE_DIR, folder)
    monkeypatch.setattr(tiny, "TINY_BASE_DIR", folder)  # the server loads this copy
    damage(folder / tiny.IMAGE_TOWER_FILE)
    with TestClient(create_app(make_settings(model="tiny-base"))) as client:
        assert client.get("/health").status_code == 200
        assert_refused(
            ready_when_settled(client), "model", "does not match config.json", str(folder / tiny.IMAGE_TOWER_FILE)
        )


def test_a_real_server_process_on_a_damaged_checkpoint_keeps_running(checkpoint, tmp_path):
    flip_bit(checkpoint / WEIGHTS_FILE)
    settings = {"PCCLIP_MODEL": str(checkpoint), "PCCLIP_DEVICE": "cpu", "PCCLIP_INDEX_DIR": str(tmp_path / "index")}
    with loopback_server(settings, wait=False) as server:
        with pytest.raises(ServerFailed, match="does not match metadata"):
            wait_ready(server, timeout=60)  # returns at once when /ready reports the failed load
        ready = httpx.get(f"{server.url}/ready", timeout=2)
        assert_refused(ready, "model", "does not match metadata", str(checkpoint / WEIGHTS_FILE))
        assert httpx.get(f"{server.url}/health", timeout=2).status_code == 200
        time.sleep(0.5)
        assert server.alive()  # still serving
        assert httpx.get(f"{server.url}/ready", timeout=2).status_code == 503


# --- the index -------------------------------------------------------------------------------


def build_index(folder: Path, fingerprint: str, dim: int) -> None:
    """12 items in an HNSW snapshot (exact_max=4), then 3 more puts in the log only."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((15, dim)).astype(np.float32)
    store = IndexStore.open(folder, fingerprint=fingerprint, embed_dim=dim, params=AnnParams(exact_max=4))
    store.put([NewItem(f"item-{i}", vectors[i], {"n": i}) for i in range(12)])
    store.snapshot()
    for i in range(12, 15):
        store.put([NewItem(f"item-{i}", vectors[i], {"n": i})])
    store.close(snapshot=False)


def manifest_file(folder: Path, key: str) -> Path:
    return folder / json.loads((folder / "manifest.json").read_text())[key]


def wal_first_record_flipped(folder: Path) -> Path:
    wal = next(folder.glob("wal-*.log"))
    flip_bit(wal, at=0.1)  # inside the first of three records: two valid ones follow
    return wal


INDEX_FAULTS = {
    "manifest garbage": (lambda f: f / "manifest.json", lambda p: p.write_text("{\x00"), "cannot be read"),
    "manifest not an object": (lambda f: f / "manifest.json", lambda p: p.write_text("[]"), "cannot be read"),
    "manifest missing": (lambda f: f / "manifest.json", Path.unlink, "is missing, but the folder holds index data"),
    "vectors bit flip": (lambda f: manifest_file(f, "vectors"), flip_bit, "does not match the sha256"),
    "vectors truncated": (lambda f: manifest_file(f, "vectors"), truncate, "does not match the sha256"),
    "vectors missing": (lambda f: manifest_file(f, "vectors"), Path.unlink, "is missing"),
    "items bit flip": (lambda f: manifest_file(f, "items"), flip_bit, "does not match the sha256"),
    "items truncated": (lambda f: manifest_file(f, "items"), truncate, "does not match the sha256"),
    "ann bit flip": (lambda f: manifest_file(f, "ann"), flip_bit, "does not match the sha256"),
    "log damaged mid-file": (lambda f: next(f.glob("wal-*.log")), lambda p: flip_bit(p, at=0.1), "is corrupt at byte"),
}


@pytest.mark.parametrize("fault", INDEX_FAULTS)
def test_a_damaged_index_keeps_the_server_up_and_the_index_unready(make_client, encoder, tmp_path, fault):
    where, damage, words = INDEX_FAULTS[fault]
    folder = tmp_path / "index"
    build_index(folder, encoder.fingerprint, encoder.embed_dim)
    damaged = where(folder)
    before = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file() and path != damaged}
    damage(damaged)
    client = make_client(index_dir=str(folder), index_exact_max=4)
    assert client.get("/health").status_code == 200
    assert ready_when_settled(client).status_code == 200  # the model API serves without its index
    assert_refused(client.get("/ready", params={"require": "index"}), "index", words, damaged.name, str(folder))
    assert client.get("/index").status_code == 503
    assert client.post("/search", json={"terms": [{"text": "a red circle"}], "k": 3}).status_code == 503
    assert client.get("/health").status_code == 200
    assert client.post("/embed", json={"texts": ["a red circle"]}).status_code == 200  # the model still serves
    # Refusing changed nothing: no snapshot replaced the files, no log was cut.
    after = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file() and path != damaged}
    assert after == before


def test_a_torn_log_tail_is_still_recovered_not_refused(make_client, encoder, tmp_path):
    """The refusal is for damage before the end; a torn last append was never acknowledged."""
    folder = tmp_path / "index"
    build_index(folder, encoder.fingerprint, encoder.embed_dim)
    truncate(next(folder.glob("wal-*.log")))  # cuts the log inside its second record
    client = make_client(index_dir=str(folder), index_exact_max=4)
    assert ready_when_settled(client).status_code == 200
    assert client.get("/index").json()["size"] == 13


def test_a_snapshot_retaken_at_the_same_point_never_rewrites_committed_files(tmp_path):
    """Two snapshots with no write between them: were the second to reuse the first's file
    names (a compaction can change their content), a crash between its renames would leave the
    manifest over a mix of old and new files. It writes new names; the manifest switches to them
    in one rename."""
    rng = np.random.default_rng(0)
    store = IndexStore.open(tmp_path, fingerprint="model", embed_dim=8)
    store.put([NewItem(f"item-{i}", rng.standard_normal(8)) for i in range(10)])
    store.delete(*[f"item-{i}" for i in range(5)])
    store.snapshot()
    first = json.loads((tmp_path / "manifest.json").read_text())
    store.snapshot()
    second = json.loads((tmp_path / "manifest.json").read_text())
    assert second["seq"] == first["seq"]
    assert {second["vectors"], second["items"]}.isdisjoint({first["vectors"], first["items"]})
    store.close()
    with IndexStore.open(tmp_path, fingerprint="model", embed_dim=8) as reopened:
        assert sorted(item.id for item in reopened.items()) == [f"item-{i}" for i in range(5, 10)]
