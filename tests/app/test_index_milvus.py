"""The Milvus backend on Milvus Lite (a Milvus in this process, on a file in a tmp folder): what
only it has (the shared checks of `index_checks` run in test_index_backends.py): the stamp,
durability across processes, several clients, and the filter language
against Milvus's own expression engine. Milvus Lite 3.x is a Python engine: these tests check what
pcclip sends and reads back through the real client API, not a Milvus server's behaviour."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from index_checks import DIM, unit

from app.errors import NotFound, NotReady
from app.index import IndexMismatch, NewItem
from app.index.filters import parse_filter, to_milvus_expr

pytest.importorskip("pymilvus", reason="the milvus extra: pip install 'pcclip[milvus]'")

from app.index.backend import redact  # noqa: E402
from app.index.milvus import MilvusIndex  # noqa: E402 — after the skip

ROOT = Path(__file__).resolve().parents[2]
FINGERPRINT = "f" * 64
_names = itertools.count()


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    """One Milvus Lite file (and sources folder) for the module; each test takes its own collection."""
    folder = tmp_path_factory.mktemp("milvus")
    return str(folder / "lite.db"), folder / "sources"


def _open(lite, collection: str, **overrides) -> MilvusIndex:
    uri, sources = lite
    options = {"fingerprint": FINGERPRINT, "embed_dim": DIM, "spec": "tiny", "sources_dir": sources}
    return MilvusIndex.open(uri, collection=collection, **{**options, **overrides})


@pytest.fixture
def index(lite):
    with _open(lite, f"c{next(_names)}") as opened:
        yield opened


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_describe_names_the_backend_and_hides_the_token(index):
    described = index.describe()
    assert described["backend"] == "milvus" and described["size"] == 0 and described["embed_dim"] == DIM
    assert described["fingerprint"] == FINGERPRINT and described["uri"].endswith("lite.db")
    assert redact("https://user:secret@milvus.example:19530") == "https://milvus.example:19530"


def test_another_model_is_told_what_to_do_and_any_model_opens_it_for_a_rebuild(lite):
    _open(lite, "stamped").close()
    with pytest.raises(IndexMismatch, match="point PCCLIP_MILVUS_COLLECTION at another collection"):
        _open(lite, "stamped", fingerprint="e" * 64)
    with _open(lite, "stamped", fingerprint=None, embed_dim=None) as any_model:  # as `pcclip index rebuild` opens it
        assert any_model.embed_dim == DIM
    with pytest.raises(NotFound, match="no milvus collection 'absent'"):
        _open(lite, "absent", fingerprint=None, embed_dim=None)


def test_a_collection_that_is_not_a_pcclip_index_is_refused(lite, index):
    from pymilvus import DataType

    client = index._client
    schema = client.create_schema(auto_id=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection("foreign", schema=schema)
    with pytest.raises(NotReady, match="'foreign'.* is not a pcclip index"):
        _open(lite, "foreign")


def test_two_clients_share_a_collection_and_closing_one_leaves_the_other(lite, rng):
    vectors = unit(rng, 2)
    first, second = _open(lite, "shared"), _open(lite, "shared")
    try:
        first.put([NewItem("a", vectors[0])])
        assert "a" in second  # Strong consistency: read at once by the other client
        assert second.put([NewItem("a", vectors[1])]).replaced == ["a"]
        np.testing.assert_allclose(first.get("a").vector, vectors[1], atol=1e-6)
        first.close()
        assert len(second) == 1
    finally:
        first.close()
        second.close()


CHILD = """
import sys
import numpy as np
from app.errors import NotReady
from app.index import NewItem
from app.index.milvus import MilvusIndex
held, own, sources = sys.argv[1:]
sys.modules["pymilvus"] = None  # what `import pymilvus` meets when the extra is not installed
try:
    MilvusIndex.open(own, fingerprint="f" * 64, embed_dim=8, sources_dir=sources)
except NotReady as error:
    print(error)
del sys.modules["pymilvus"]
try:
    MilvusIndex.open(held, collection="durable", fingerprint="f" * 64, embed_dim=8, sources_dir=sources)
except NotReady as error:
    print(error)
index = MilvusIndex.open(own, collection="durable", fingerprint="f" * 64, embed_dim=8, sources_dir=sources)
index.put([NewItem(f"i{i}", np.eye(8, dtype=np.float32)[i], {"i": i}, b"img%d" % i) for i in range(8)])
index.delete("i3")
index.close()
"""


def test_writes_survive_the_process_and_a_second_process_is_refused(tmp_path, lite, index):
    """One child process (importing pcclip is slow): without pymilvus it is told the extra to install;
    with it, it finds the file this process holds refused, then writes a file of its own and exits;
    this process reads that file back. (Hiding pymilvus here would break pymilvus's own threads.)"""
    uri, sources = str(tmp_path / "new-folder" / "own.db"), tmp_path / "sources"  # the folder is made
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-c", CHILD, lite[0], uri, str(sources)]
    child = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    assert "pip install 'pcclip[milvus]'" in child.stdout
    # Milvus Lite: one process per file (a Milvus server takes many clients)
    assert "one process per file" in child.stdout and "lite.db" in child.stdout
    with MilvusIndex.open(
        uri, collection="durable", fingerprint="f" * 64, embed_dim=8, sources_dir=sources
    ) as reopened:
        assert sorted(item.id for item in reopened.items()) == [f"i{i}" for i in range(8) if i != 3]
        item = reopened.get("i5")
        assert item.metadata == {"i": 5} and reopened.source_bytes(item.source) == b"img5"
        assert reopened.search(np.eye(8, dtype=np.float32)[5], 1)[0].id == "i5"


# --- the filter language against Milvus's expression engine -------------------------------------

KEYS = ["n", "s", "mix", "b"]


def _random_value(rng: np.random.Generator, key: str):
    """Numbers, strings and nulls mixed under most keys; booleans under `b` alone, beside strings and
    nulls (Milvus Lite, a Python engine, takes true for 1: see `to_milvus_expr`)."""
    choices = {
        "n": [0, 1, 2, 2.5, -1, 3],
        "s": ["a", "b", "ab", 'q"uote', "back\\slash"],
        "mix": [1, 2, "1", "b", None, 2.0],
        "b": [True, False, "true", None],
    }[key]
    return choices[rng.integers(len(choices))]


def _random_metadata(rng):
    return {key: _random_value(rng, key) for key in KEYS if rng.random() < 0.75}


def _random_filter(rng, depth=0):
    if depth < 2 and rng.random() < 0.3:
        group = "$and" if rng.random() < 0.5 else "$or"
        return {group: [_random_filter(rng, depth + 1) for _ in range(rng.integers(1, 4))]}
    key = KEYS[rng.integers(len(KEYS))]
    op = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "plain"][rng.integers(9)]
    value = _random_value(rng, key)
    if op == "plain":
        return {key: value}
    if op in ("$in", "$nin"):
        return {key: {op: [value, _random_value(rng, key)]}}
    if op in ("$gt", "$gte", "$lt", "$lte") and (value is None or isinstance(value, bool)):
        value = "b"
    return {key: {op: value}}


def test_milvus_selects_what_matches_selects(index):
    rng = np.random.default_rng(7)
    metadata = {f"i{i}": _random_metadata(rng) for i in range(60)}
    index.put([NewItem(i, unit(rng, 1)[0], m) for i, m in metadata.items()])
    for _ in range(150):
        raw = _random_filter(rng)
        parsed = parse_filter(raw)
        expr = to_milvus_expr(parsed)
        rows = index._client.query(index.collection, filter=expr, output_fields=["id"], limit=1000)
        expected = {i for i, m in metadata.items() if parsed.matches(m)}
        assert {row["id"] for row in rows} == expected, (raw, expr)


def test_milvus_lite_takes_true_for_one(index):
    """The one known difference of Milvus Lite (Python's `True == 1`); pcclip's own rule and, as we
    expect, a Milvus server keep booleans apart. When this fails, Lite changed: drop the note."""
    vectors = unit(np.random.default_rng(1), 2)
    index.put([NewItem("one", vectors[0], {"k": 1}), NewItem("true", vectors[1], {"k": True})])
    assert {h.id for h in index.search(vectors[0], 5, filter={"k": True})} == {"one", "true"}
    assert not parse_filter({"k": True}).matches({"k": 1})
