"""The row table alone (no folder, no lock): rows, tombstones, postings, withheld metadata,
compaction, where the vectors live, and exact / approximate search with its cut-offs."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from app.index import ann
from app.index.rows import RowTable
from app.index.wal import Record

DIM = 8
faiss.omp_set_num_threads(1)


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def puts(vectors: np.ndarray, start: int = 0, metadata=lambda i: {"even": i % 2 == 0}) -> list[Record]:
    return [Record(start + i, "put", f"x{start + i}", metadata(start + i), None, v) for i, v in enumerate(vectors)]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def flat_storage(index: faiss.Index) -> faiss.IndexFlat:
    return index if isinstance(index, faiss.IndexFlat) else faiss.downcast_index(index.storage)


def test_puts_replacements_and_deletes_leave_tombstones_the_searches_skip(rng):
    vectors = unit(rng, 10)
    table = RowTable(DIM, ann.AnnParams())
    table.apply(puts(vectors), checked=True)
    table.apply([Record(10, "put", "x3", {"even": True}, None, vectors[4]), Record(11, "delete", "x5")], checked=True)
    assert len(table) == 9 and len(table.ids) == 11 and table.dead == 2
    assert table.ids[3] is None and table.ids[5] is None and table.row["x3"] == 10
    assert sorted(table.killed) == [3, 5]
    assert {h.id for h in table.search(vectors[4], 2)} == {"x3", "x4"}
    assert "x5" not in {h.id for h in table.search(vectors[5], 10)}
    evens = table.search(vectors[0], 10, equal={"even": True})
    assert {h.id for h in evens} == {"x0", "x2", "x3", "x4", "x6", "x8"}


def test_replayed_metadata_that_breaks_the_rules_is_withheld_and_in_no_posting(rng):
    vectors = unit(rng, 2)
    table = RowTable(DIM, ann.AnnParams())
    table.apply([Record(1, "put", "bad", {"x": float("nan")}, None, vectors[0]), *puts(vectors[1:], 1)])
    bad = table.item(table.row["bad"])
    assert bad.metadata == {} and "NaN" in bad.metadata_problem
    assert [h.id for h in table.search(vectors[0], 5, equal={"x": float("nan")})] == []
    assert [h.id for h in table.search(vectors[0], 5, matches=lambda m: m == {})] == ["bad"]  # served as {}


def test_compaction_drops_tombstones_keeps_problems_and_switches_kind(rng):
    vectors = unit(rng, 30)
    params = ann.AnnParams(exact_max=10)
    table = RowTable(DIM, params)
    table.apply([Record(0, "put", "bad", [1], None, vectors[0]), *puts(vectors[1:], 1)])
    table.apply([Record(40 + i, "delete", f"x{i}") for i in range(1, 10)])
    assert table.kind == "flat" and table.needs_compaction()
    compact = table.compacted()
    assert compact.kind == "hnsw" and len(compact.ids) == len(compact) == 21 and not compact.needs_compaction()
    assert compact.item(compact.row["bad"]).metadata_problem is not None and len(compact.problems) == 1
    for i in range(10, 30):
        assert np.array_equal(compact.item(compact.row[f"x{i}"]).vector, vectors[i])
    assert len(table) == 21 and table.dead == 9  # the old table is untouched (it serves until swapped)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_vectors_are_held_once_in_the_faiss_storage(rng, kind):
    params = ann.AnnParams()
    table = RowTable(DIM, params, ann.new_index(kind, DIM, params))
    for start in range(0, 100, 10):  # FAISS reallocates as it grows: the view follows
        table.apply(puts(unit(rng, 10), start), checked=True)
        storage = flat_storage(table.index)
        assert np.shares_memory(table.vectors.view(), faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * DIM))
    assert len(table.vectors) == 100 and table.holds_vectors  # no copy of its own


def test_an_index_without_flat_storage_gets_its_own_copy(rng):
    """A compressed kind (here fp16 scalar quantization) cannot give back the exact vectors."""
    vectors = unit(rng, 40)
    index = faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    table = RowTable(DIM, ann.AnnParams(), index)
    table.apply(puts(vectors[:25]), checked=True)
    table.apply(puts(vectors[25:], 25), checked=True)
    assert np.array_equal(table.vectors[range(40)], vectors)  # exact float32, not the fp16 codes
    assert table.search(vectors[30], 1)[0].id == "x30"


@pytest.mark.parametrize("exact_max", [1000, 10])  # exact scans, and the HNSW path
def test_min_score_cuts_hits_below_it(rng, exact_max):
    params = ann.AnnParams(exact_max=exact_max)
    table = RowTable(DIM, params, ann.new_index(params.kind_for(200), DIM, params))
    vectors = unit(rng, 200)
    table.apply(puts(vectors), checked=True)
    q = vectors[7]
    exact = np.sort(vectors @ q)[::-1]
    cut = float(exact[5] - 1e-4)  # six rows score at least this
    hits = table.search(q, 50, min_score=cut)
    assert len(hits) == 6 and all(h.score >= cut for h in hits) and hits[0].id == "x7"
    assert table.search(q, 50, min_score=1.01) == []
    filtered = table.search(q, 50, equal={"even": False}, min_score=cut)  # the exact filtered path
    assert all(h.score >= cut and int(h.id[1:]) % 2 for h in filtered)


def test_equality_candidates_then_a_predicate_then_exclusions(rng):
    vectors = unit(rng, 60)
    table = RowTable(DIM, ann.AnnParams())
    table.apply(puts(vectors, metadata=lambda i: {"group": i % 3, "n": i}), checked=True)
    hits = table.search(vectors[0], 60, equal={"group": 0}, matches=lambda m: m["n"] >= 30, exclude=["x33"])
    assert {h.id for h in hits} == {f"x{i}" for i in range(30, 60, 3)} - {"x33"}
    unfiltered = table.search(vectors[0], 60, matches=lambda m: m["n"] < 5)  # no equality keys: the ANN path
    assert {h.id for h in unfiltered} == {f"x{i}" for i in range(5)}


def test_rows_that_do_not_fit_are_refused(rng):
    table = RowTable(DIM, ann.AnnParams())
    table.apply(puts(unit(rng, 3)), checked=True)
    with pytest.raises(ValueError, match="not a live row"):
        table.kill([7])
    with pytest.raises(ValueError, match="vectors in the index"):
        table.append(None, ["y"], [{}], [None])  # no vector for the row
    with pytest.raises(ValueError, match="in rows"):
        table.append(unit(rng, 1), ["x1"], [{}], [None])  # an id that is live already
