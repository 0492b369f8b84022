"""A compressed-kind store serves from its codes: the float rows of its snapshot are memory-mapped
(not anonymous memory), searches re-rank them exactly, and compaction streams them to a new file."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from app.index import AnnParams, IndexStore, NewItem, rows, snapshot, vectors
from app.index.vectors import MappedVectors

DIM = 16
N = 600
faiss.omp_set_num_threads(1)
# Every list probed and every row re-ranked (rerank_k_factor · k ≥ N for k ≥ 10): exact order.
COVERED = AnnParams(kind="ivf-sq8", train_min=300, train_max=400, nlist_max=8, nprobe=8, rerank_k_factor=60)


def clustered(rng: np.random.Generator, n: int, clusters: int = 12) -> np.ndarray:
    """Unit vectors around `clusters` random centres: neighbours lie close, as embeddings' do."""
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def data() -> np.ndarray:
    return clustered(np.random.default_rng(0), N + 20)


def open_store(path: Path, params: AnnParams = COVERED) -> IndexStore:
    return IndexStore.open(path, fingerprint="model-a", embed_dim=DIM, params=params)


def built(path: Path, data: np.ndarray, params: AnnParams = COVERED) -> IndexStore:
    """A store of N items trained into ivf-sq8 by a full snapshot, then 10 more rows in memory."""
    store = open_store(path, params)
    store.put([NewItem(f"x{i}", data[i], {"even": i % 2 == 0}) for i in range(N)])
    store.snapshot()
    store.put([NewItem(f"x{i}", data[i], {"even": i % 2 == 0}) for i in range(N, N + 10)])
    assert store.describe()["index_type"] == "ivf-sq8"
    return store


def mapped_files() -> set[str]:
    """Names of the files this process maps (from /proc/self/maps)."""
    lines = Path("/proc/self/maps").read_text().splitlines()
    return {Path(line.split(None, 5)[5].removesuffix(" (deleted)")).name for line in lines if "/" in line}


def test_a_reopened_store_maps_its_snapshot_floats_and_holds_only_new_rows(tmp_path, data):
    built(tmp_path, data).close()  # the 10 rows since go to a delta
    store = open_store(tmp_path)
    try:
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        column = store._table.vectors
        assert isinstance(column, MappedVectors) and column.in_memory == 0
        assert len(column._parts) == 2 and not any(part.flags.writeable for part in column._parts)
        segments = [manifest["vectors"], *(delta["vectors"] for delta in manifest["deltas"])]
        assert len(segments) == 2 and set(segments) <= mapped_files()  # file-backed, not read into memory
        store.put([NewItem("late", data[N + 10])])
        assert column.in_memory == 1
        store.snapshot(full=False)  # the rows written are served from their file from now on
        assert column.in_memory == 0 and np.allclose(store.get("late").vector, data[N + 10], atol=1e-6)
    finally:
        store.close()


def test_search_ranks_and_scores_exactly_when_the_rerank_covers_the_rows(tmp_path, data):
    store = built(tmp_path, data)
    try:
        queries = clustered(np.random.default_rng(1), 10)
        held = data[: N + 10]
        for q in queries:
            truth = np.argsort(-(held @ q), kind="stable")[:10]
            hits = store.search(q, 10)
            assert [h.id for h in hits] == [f"x{i}" for i in truth]
            assert np.allclose([h.score for h in hits], held[truth] @ q, atol=1e-6)
        # With the default rerank (4 · k candidates) scores are still exact cosines, best first.
        with_default = AnnParams(kind="ivf-sq8", train_min=300, train_max=400, nlist_max=8, nprobe=2)
        store._table.params = with_default
        hits = store.search(queries[0], 10)
        exact = [float(store.get(h.id).vector @ queries[0]) for h in hits]
        assert np.allclose([h.score for h in hits], exact, atol=1e-6) and exact == sorted(exact, reverse=True)
    finally:
        store.close()


def test_min_score_keeps_exactly_the_rows_that_reach_it(tmp_path, data):
    store = built(tmp_path, data)
    try:
        q = data[7]
        exact = data[: N + 10] @ q
        cut = float(np.sort(exact)[::-1][5] - 1e-4)  # six rows score at least this
        hits = store.search(q, 50, min_score=cut)
        assert sorted(h.id for h in hits) == sorted(f"x{i}" for i in np.flatnonzero(exact >= cut))
        assert len(hits) == 6 and hits[0].id == "x7" and all(h.score >= cut for h in hits)
        evens = store.search(q, 50, filter={"even": True}, min_score=cut)  # the exact filtered path
        assert sorted(h.id for h in evens) == sorted(f"x{i}" for i in np.flatnonzero(exact >= cut) if i % 2 == 0)
    finally:
        store.close()


def test_compaction_streams_the_live_rows_and_commits_its_file_as_the_base(tmp_path, data, monkeypatch):
    store = built(tmp_path, data)
    store.delete(*(f"x{i}" for i in range(0, N, 3)))  # a third of the rows: worth compacting
    live = {item.id: item.vector.tolist() for item in store.items()}
    gathered, files = [], []
    monkeypatch.setattr(rows, "CHUNK_ROWS", 64)
    monkeypatch.setattr(vectors, "CHUNK_ROWS", 64)
    gather = MappedVectors.__getitem__
    monkeypatch.setattr(MappedVectors, "__getitem__", lambda self, r: gathered.append(len(r)) or gather(self, r))
    write = snapshot.write_vectors
    monkeypatch.setattr(snapshot, "write_vectors", lambda path, *a: files.append(path.name) or write(path, *a))
    store.snapshot()
    assert store.describe()["deleted_rows"] == 0 and store.describe()["index_type"] == "ivf-sq8"
    assert gathered[0] == COVERED.train_max and max(gathered[1:]) <= 64  # a sample, then chunks: never every row
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert files == [manifest["vectors"]]  # written once, by the compaction; the snapshot committed it
    monkeypatch.undo()
    assert {item.id: item.vector.tolist() for item in store.items()} == live
    store.close()
    with open_store(tmp_path) as reopened:  # and after a restart
        assert {item.id: item.vector.tolist() for item in reopened.items()} == live
        assert reopened.search(data[4], 1)[0].id == "x4" and "x3" not in reopened


def test_a_failed_snapshot_after_compaction_leaves_the_committed_one_and_serves_on(tmp_path, data, monkeypatch):
    store = built(tmp_path, data)
    store.delete(*(f"x{i}" for i in range(0, N, 3)))
    committed, x4 = (tmp_path / "manifest.json").read_bytes(), store.get("x4").vector.tolist()

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(snapshot, "write_graph", full_disk)
    with pytest.raises(OSError):
        store.snapshot()
    monkeypatch.undo()
    assert (tmp_path / "manifest.json").read_bytes() == committed
    named = set(json.loads(committed)["sha256"]) | {p.name for p in tmp_path.glob("wal-*.log")}
    assert {p.name for p in tmp_path.iterdir() if snapshot.DATA_FILE.fullmatch(p.name)} == named  # its files removed
    assert store.get("x4").vector.tolist() == x4  # served from the removed file's map
    store.snapshot()
    store.close()
    with open_store(tmp_path) as reopened:
        assert len(reopened) == N + 10 - N // 3 and reopened.get("x4").vector.tolist() == x4


def test_a_store_that_grows_retrains_its_lists_for_its_size(tmp_path):
    params = AnnParams(kind="ivf-sq8", train_min=100, train_max=400, nlist_max=64, nprobe=4)
    grown = clustered(np.random.default_rng(3), 1_700)
    store = open_store(tmp_path, params)

    def lists() -> int:
        return faiss.extract_index_ivf(store._table.index).nlist

    try:
        store.put([NewItem(f"x{i}", grown[i]) for i in range(100)])
        store.snapshot()
        trained = store._table.index
        assert lists() == params.nlist_for(100) == 8
        store.put([NewItem(f"x{i}", grown[i]) for i in range(100, 120)])
        store.snapshot()  # the lists still fit 120 rows: kept
        assert store._table.index is trained
        store.put([NewItem(f"x{i}", grown[i]) for i in range(120, 1_700)])
        store.snapshot()  # 17× the rows: retrained with the lists 1,700 rows call for
        assert lists() == params.nlist_for(1_700) == 32
        assert [hit.id for hit in store.search(grown[1_234], 1)] == ["x1234"]
    finally:
        store.close()
