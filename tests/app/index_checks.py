"""Behavioural checks of an index backend (the `IndexBackend` interface), written once for every
backend (run over each by tests/app/test_index_backends.py): the first kind takes an open, empty
backend of embedding size `DIM`; the second (`open_index`) opens its one place itself, again and
again. Each fails on a wrong answer."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from app.errors import InvalidInput, NotFound
from app.index import IndexMismatch, NewItem

DIM = 8
BACKENDS = ["faiss", "milvus"]
_collections = itertools.count()


@pytest.fixture(scope="module")
def milvus_lite(tmp_path_factory):
    """One Milvus Lite file for a module (opening one is slow); each test takes its own collection."""
    pytest.importorskip("pymilvus", reason="the milvus extra: pip install 'pcclip[milvus]'")
    return tmp_path_factory.mktemp("milvus") / "lite.db"


def backend_settings(request) -> dict:
    """The settings that choose `request.param` (a name of `BACKENDS`): Milvus on the module's file."""
    if request.param == "faiss":
        return {"index_backend": "faiss"}
    uri = request.getfixturevalue("milvus_lite")
    return {"index_backend": "milvus", "milvus_uri": str(uri), "milvus_collection": f"c{next(_collections)}"}


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)  # (N, D)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def check_put_upsert_get(index, rng):
    vectors = unit(rng, 3)
    first = index.put([NewItem("a", 3 * vectors[0], {"n": 1}, b"image-a"), NewItem("b", vectors[1])])
    assert (first.added, first.replaced) == (["a", "b"], [])
    second = index.put([NewItem("b", vectors[2], {"n": 2}), NewItem("c", vectors[2])])
    assert (second.added, second.replaced) == (["c"], ["b"])
    assert len(index) == 3 and "b" in index and "zz" not in index and "bad id!" not in index
    a = index.get("a")
    assert a.metadata == {"n": 1} and a.metadata_problem is None
    np.testing.assert_allclose(a.vector, vectors[0], atol=1e-6)  # stored normalized
    assert index.source_bytes(a.source) == b"image-a"
    b = index.get("b")
    assert b.metadata == {"n": 2} and b.source is None
    np.testing.assert_allclose(b.vector, vectors[2], atol=1e-6)
    with pytest.raises(NotFound, match="'zz'"):
        index.get("zz")
    assert sorted(item.id for item in index.items()) == ["a", "b", "c"]


def check_vectors_and_delete(index, rng):
    vectors = unit(rng, 3)
    index.put([NewItem(name, v) for name, v in zip("xyz", vectors, strict=True)])
    got = index.vectors(["z", "x", "z"])  # (3, D), in the order asked
    np.testing.assert_allclose(got, vectors[[2, 0, 2]], atol=1e-6)
    with pytest.raises(NotFound, match="'nope'"):
        index.vectors(["x", "nope"])
    with pytest.raises(NotFound, match="'nope'"):
        index.delete("x", "nope")
    assert len(index) == 3  # nothing removed by the refused delete
    index.delete("x", "y")
    assert len(index) == 1 and "x" not in index and [item.id for item in index.items()] == ["z"]


def check_bad_input_refused(index, rng):
    vector = unit(rng, 1)[0]
    cases = [
        ([NewItem("a", np.zeros(DIM))], "zero"),
        ([NewItem("a", vector[:4])], "size 4"),
        ([NewItem('a"b', vector)], "invalid id"),
        ([NewItem("a", vector, {"x": float("nan")})], "finite"),
        ([NewItem("a", vector), NewItem("a", vector)], "twice"),
    ]
    for items, message in cases:
        with pytest.raises(InvalidInput, match=message):
            index.put(items)
    assert len(index) == 0
    with pytest.raises(InvalidInput, match=r"filter\.year: \$gt needs a number or a string"):
        index.search(vector, 3, filter={"year": {"$gt": [1]}})


def check_search_order_exclude_min_score(index, rng):
    vectors = unit(rng, 20)
    index.put([NewItem(f"i{i}", v, {"i": i}) for i, v in enumerate(vectors)])
    query = vectors[0] + 0.3 * vectors[1]
    expected = np.argsort(-(vectors @ (query / np.linalg.norm(query))), kind="stable")
    hits = index.search(query, 5)
    assert [h.id for h in hits] == [f"i{i}" for i in expected[:5]]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    np.testing.assert_allclose(hits[0].vector, vectors[expected[0]], atol=1e-6)
    assert hits[0].metadata == {"i": int(expected[0])}
    excluded = index.search(query, 5, exclude=[hits[0].id, hits[2].id])
    assert [h.id for h in excluded] == [h.id for h in hits if h.id not in {hits[0].id, hits[2].id}][:3] + [
        f"i{i}" for i in expected[5:7]
    ]
    floor = (hits[1].score + hits[2].score) / 2
    assert [h.id for h in index.search(query, 5, min_score=floor)] == [h.id for h in hits[:2]]


OPERATOR_CASES = [
    ({"year": 2021}, {"b"}),
    ({"year": {"$eq": 2021.0}}, {"b"}),
    ({"year": {"$ne": 2021}}, {"a", "c", "d", "e"}),  # a missing key matches $ne
    ({"year": {"$gt": 2020}}, {"b", "c"}),
    ({"year": {"$gte": 2020}}, {"a", "b", "c"}),
    ({"year": {"$lt": 2021}}, {"a"}),  # "2019" is a string: not less than a number
    ({"year": {"$lte": 2021, "$gt": 2019}}, {"a", "b"}),
    ({"tag": {"$in": ["x", "y"]}}, {"a", "b"}),
    ({"tag": {"$nin": ["x", "y"]}}, {"c", "d", "e"}),
    ({"tag": {"$gt": "x"}}, {"b", "c"}),  # strings order by code point
    ({"flag": True}, {"c"}),
    ({"tag": None}, {"d", "e"}),  # null: missing or null
    ({"tag": {"$ne": None}}, {"a", "b", "c"}),
    ({"$or": [{"tag": "x"}, {"year": {"$gte": 2022}}]}, {"a", "c"}),
    ({"$and": [{"year": {"$gte": 2020}}, {"$or": [{"tag": "y"}, {"flag": True}]}]}, {"b", "c"}),
    ({"tag": 'x" or id != "'}, set()),  # an injected quote stays inside the string
    ({}, {"a", "b", "c", "d", "e"}),
]
OPERATOR_ITEMS = {
    "a": {"year": 2020, "tag": "x"},
    "b": {"year": 2021, "tag": "y"},
    "c": {"year": 2023, "tag": "z", "flag": True},
    "d": {"year": "2019", "tag": None},
    "e": {},
}


def check_every_filter_operator(index, rng):
    vectors = unit(rng, len(OPERATOR_ITEMS))
    index.put([NewItem(i, v, m) for (i, m), v in zip(OPERATOR_ITEMS.items(), vectors, strict=True)])
    for filter, expected in OPERATOR_CASES:
        found = {h.id for h in index.search(vectors[0], 10, filter=filter)}
        assert found == expected, filter


def check_numbers_are_equal_by_value(index, rng):
    """1 and 1.0 are one value for every operator (FAISS's postings key them alike); True is not 1."""
    vectors = unit(rng, 4)
    stored = {"int": {"n": 2}, "float": {"n": 2.0}, "bool": {"n": True}, "str": {"n": "2"}}
    index.put([NewItem(i, v, m) for (i, m), v in zip(stored.items(), vectors, strict=True)])
    for filter in ({"n": 2}, {"n": 2.0}, {"n": {"$in": [2.0, "x"]}}, {"$and": [{"n": 2}, {"n": {"$gte": 1.5}}]}):
        assert {h.id for h in index.search(vectors[0], 10, filter=filter)} == {"int", "float"}, filter
    assert {h.id for h in index.search(vectors[0], 10, filter={"n": {"$ne": 2}})} == {"bool", "str"}


# --- checks that open the backend's one place themselves: `open_index(**overrides)` -------------


def check_writes_survive_close_and_reopen(open_index, rng):
    vectors = unit(rng, 4)
    with open_index() as index:
        index.put([NewItem(f"i{i}", v, {"i": i}, b"img%d" % i) for i, v in enumerate(vectors)])
        index.delete("i1")
        index.put([NewItem("i2", vectors[3], {"i": 22}, b"new")])
    with open_index() as index:
        assert sorted(item.id for item in index.items()) == ["i0", "i2", "i3"]
        item = index.get("i2")
        assert item.metadata == {"i": 22} and index.source_bytes(item.source) == b"new"
        np.testing.assert_allclose(item.vector, vectors[3], atol=1e-6)
        assert [h.id for h in index.search(vectors[0], 1, filter={"i": {"$lt": 1}})] == ["i0"]


def check_another_model_is_refused(open_index, rng):
    open_index().close()
    with pytest.raises(IndexMismatch, match=r"built by model ffffffffffff \(embed dim 8\); the served model is tiny"):
        open_index(fingerprint="e" * 64)
    with pytest.raises(IndexMismatch, match="embed dim 8.*embed dim 16"):
        open_index(embed_dim=16)


def check_concurrent_readers_and_writers(open_index, rng):
    """Two writers and two readers at once: no call fails, a hit is always a whole item (its vector
    and metadata those of one put), and every write is there at the end."""
    vectors = unit(rng, 20)
    failures: list[BaseException] = []

    def guarded(work):
        def run():
            try:
                work()
            except BaseException as error:  # noqa: BLE001 — reported by the main thread
                failures.append(error)

        return threading.Thread(target=run)

    with open_index() as index:

        def writer(start):
            for i in range(start, 20, 4):
                index.put([NewItem(f"w{i}", vectors[i], {"i": i}), NewItem(f"w{i + 1}", vectors[i + 1], {"i": i + 1})])

        def reader():
            for i in range(12):
                for hit in index.search(vectors[i], 5, filter={"i": {"$gte": 0}}):
                    n = hit.metadata["i"]
                    assert hit.id == f"w{n}", hit
                    np.testing.assert_allclose(hit.vector, vectors[n], atol=1e-6)

        threads = [guarded(lambda s=s: writer(s)) for s in (0, 2)] + [guarded(reader) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not failures, failures
        assert len(index) == 20 and {item.id for item in index.items()} == {f"w{i}" for i in range(20)}
