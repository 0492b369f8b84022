"""Client strings never become paths: hostile ids are a clean 4xx, and nothing is written or read
outside the index folder.

Where client strings could touch the filesystem: index item ids (kept only inside the index's
JSON and log files; stored images are named by their sha256, never by id), `/search` id terms
and `/rank` ids (looked up in memory), generation job ids (server-made uuid4 hex, looked up in a
dict). The model is the operator's choice (`PCCLIP_MODEL`); no request field names a model.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from apptools import b64, make_settings, png, shape

from app.generation.jobs import JobManager
from app.main import create_app

HOSTILE_IDS = [
    "../../etc/passwd",
    "..%2F..%2Fx",
    "..",
    ".",
    ".hidden",
    "a/b",
    "/abs",
    "a\\b",
    "..\\..\\windows",
    "\x00",
    "a\x00b",
    "a\nb",
    " a",
    "x" * 257,
    "x" * 100_000,
    "ａｂｃ",  # fullwidth letters
    "a\u2215b",  # DIVISION SLASH, looks like '/'
    "\u2024\u2024",  # ONE DOT LEADER ×2, looks like '..'
    "\uff0e\uff0e\uff0fx",  # fullwidth '../'
    "e\u0301",  # combining accent
    "",
]


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*")}


@pytest.fixture
def sandbox(tmp_path, make_client):
    """(client, index folder, tmp root): the index lives in tmp_root/index/."""
    index = tmp_path / "srv" / "index"
    client = make_client(index_dir=str(index))
    assert client.get("/ready").status_code == 200
    return client, index, tmp_path


def assert_nothing_outside(index: Path, root: Path, before: set[Path]) -> None:
    created = files_under(root) - before
    outside = [p for p in created if index not in p.parents and p != index]
    assert outside == [], outside
    assert not any(p.name in ("passwd", "x", "b", "windows") for p in files_under(root)), files_under(root)


@pytest.mark.parametrize("item_id", HOSTILE_IDS, ids=lambda s: repr(s[:24]))
def test_hostile_ids_cannot_be_added(sandbox, item_id):
    client, index, root = sandbox
    before = files_under(root)
    response = client.post("/index/items", json={"items": [{"id": item_id, "image": b64(png(shape("red")))}]})
    assert response.status_code == 422, response.text
    assert client.get("/index").json()["size"] == 0
    assert_nothing_outside(index, root, before)
    assert not list((index / "sources").iterdir())  # refused before any image bytes were stored


def test_a_valid_id_is_data_not_a_path(sandbox):
    """An id full of every allowed punctuation is stored, and no file is named after it."""
    client, index, root = sandbox
    item_id = "a.b_c-d:e@f+g=h"
    image = png(shape("blue"))
    response = client.post("/index/items", json={"items": [{"id": item_id, "image": b64(image)}]})
    assert response.status_code == 200, response.text
    assert not any(item_id in path.name for path in files_under(root))
    assert (index / "sources" / hashlib.sha256(image).hexdigest()).is_file()  # blobs are named by content
    assert client.get(f"/index/items/{item_id}").json()["id"] == item_id


@pytest.mark.parametrize("item_id", HOSTILE_IDS[:14] + HOSTILE_IDS[15:20], ids=lambda s: repr(s[:24]))
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_hostile_ids_in_the_path_are_a_clean_4xx(sandbox, method, item_id):
    client, index, root = sandbox
    client.post("/index/items", json={"items": [{"id": "keep", "image": b64(png(shape("red")))}]})
    before = files_under(root)
    # Dots as %2E: the test client would otherwise resolve `..` segments before sending.
    for raw in {quote(item_id, safe="").replace(".", "%2E"), quote(item_id, safe="/\\").replace(".", "%2E")}:
        response = client.request(method, f"/index/items/{raw}")
        assert 400 <= response.status_code < 500, (raw, response.status_code, response.text)
        assert "root:" not in response.text  # nothing read from /etc/passwd
    assert client.get("/index").json()["size"] == 1
    assert_nothing_outside(index, root, before)


@pytest.mark.parametrize("item_id", ["../../etc/passwd", "a/b", "\x00", "x" * 300, "ａｂｃ", ""])
def test_hostile_id_terms_in_search_and_rank_are_422(sandbox, item_id):
    client, index, root = sandbox
    before = files_under(root)
    search = client.post("/search", json={"terms": [{"id": item_id}], "k": 1})
    assert search.status_code == 422, search.text
    rank = client.post("/rank", json={"text": "redder", "ids": [item_id]})
    assert rank.status_code == 422, rank.text
    assert_nothing_outside(index, root, before)


def test_the_index_folder_cannot_be_escaped_through_symlinked_ids(sandbox):
    """Even with a planted symlink in sources/, an id cannot select it: sources are named by sha256."""
    client, index, root = sandbox
    secret = root / "secret.txt"
    secret.write_text("root:x:0:0")
    os.symlink(secret, index / "sources" / "link")
    response = client.post("/search", json={"terms": [{"id": "link"}], "k": 1})
    assert response.status_code == 404
    assert "root:" not in response.text


class _StubGenerator:
    """A ready generator slot whose jobs never run: job ids are looked up, nothing else."""

    def __init__(self) -> None:
        self.jobs = JobManager(lambda request, step: None, queue_limit=1, ttl_s=60)

    def require(self) -> _StubGenerator:
        return self  # the ready generator: its `jobs` are what the routes use


@pytest.mark.parametrize(
    "job_id",
    ["..%2F..%2Fetc%2Fpasswd", "..", "%00", "a%00b", "x" * 10_000, "%EF%BC%8E%EF%BC%8E", "0" * 32, "%2Fetc%2Fpasswd"],
)
@pytest.mark.parametrize("suffix", ["", "/events"])
def test_unknown_job_ids_are_an_opaque_404(make_client, job_id, suffix):
    client = make_client()
    stub = _StubGenerator()
    client.app.state.generator_slot = stub
    try:
        response = client.get(f"/generate/{job_id}{suffix}")
        assert "root:" not in response.text
        # The client resolves "/generate/.." to "/" (RFC 3986), which is the playground, not a job.
        if response.request.url.path.startswith("/generate/"):
            assert response.status_code == 404, response.text
        cancelled = client.post(f"/generate/{job_id}/cancel")
        assert cancelled.status_code in (404, 405)
    finally:
        stub.jobs.close()


# OpenAI's protocol requires `model`; it must name the served model, any other is a 404
# (test_v1_openai.py), so it picks nothing.
NAMES_THE_SERVED_MODEL = {"EmbeddingsRequest": {"model"}}


def test_no_request_field_names_a_model(client):
    """The model is the operator's (PCCLIP_MODEL); no request schema has a field that picks one."""
    spec = client.get("/openapi.json").json()
    for name, schema in spec["components"]["schemas"].items():
        if name.endswith("Request") or name.endswith("Input") or name == "SearchTerm":
            fields = set(schema.get("properties", {})) - NAMES_THE_SERVED_MODEL.get(name, set())
            assert not fields & {"model", "spec", "checkpoint", "weights", "path", "sdxl_model"}, (name, fields)


def test_the_model_field_of_v1_cannot_pick_another_model(client):
    response = client.post("/v1/embeddings", json={"model": "/etc", "input": "a red circle"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"


def test_an_unknown_field_naming_a_model_is_refused(client):
    response = client.post("/embed", json={"texts": ["a red circle"], "model": "/etc"})
    assert response.status_code == 422


def test_the_operator_may_name_a_model_by_path(tmp_path):
    """PCCLIP_MODEL as a folder is the operator's choice: it is parsed as a checkpoint path."""
    from models.spec import SpecError, parse_spec

    with pytest.raises(SpecError, match="not a pcclip checkpoint"):
        parse_spec(str(tmp_path))
    assert make_settings(model=str(tmp_path)).model == str(tmp_path)
    assert create_app(make_settings(model=str(tmp_path))) is not None
