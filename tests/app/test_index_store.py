"""The index store on handmade vectors: writes, recovery, torn logs, stamps, ids, concurrency."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time

import faiss
import numpy as np
import pytest
from apptools import nested

from app.errors import InvalidInput, NotFound, StorageFull
from app.index import AnnParams, IndexBusy, IndexMismatch, IndexStore, NewItem
from app.index.wal import HEADER, Record, WriteAheadLog, read_records

DIM = 16
faiss.omp_set_num_threads(1)


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def open_store(path, **options) -> IndexStore:
    return IndexStore.open(path, fingerprint="model-a", embed_dim=DIM, **options)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_put_search_replace_delete(tmp_path, rng):
    vectors = unit(rng, 20)
    with open_store(tmp_path) as store:
        result = store.put([NewItem(f"item-{i}", vectors[i], {"even": i % 2 == 0}) for i in range(20)])
        assert len(result.added) == 20 and result.replaced == []
        hits = store.search(vectors[3], 3)
        assert hits[0].id == "item-3" and hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

        # Replace item-3 with item-4's vector: the old vector is gone, the new one is found.
        assert store.put([NewItem("item-3", vectors[4], {"even": False})]).replaced == ["item-3"]
        assert {h.id for h in store.search(vectors[4], 2)} == {"item-3", "item-4"}
        assert "item-3" not in {h.id for h in store.search(vectors[3], 20) if h.score > 0.999}

        store.delete("item-4")
        with pytest.raises(NotFound):
            store.delete("item-4")
        assert "item-4" not in {h.id for h in store.search(vectors[4], 20)}
        assert len(store) == 19

        evens = store.search(vectors[0], 20, filter={"even": True})
        assert {h.id for h in evens} == {f"item-{i}" for i in range(0, 20, 2) if i != 4}
        assert store.search(vectors[0], 5, exclude=["item-0"])[0].id != "item-0"


def test_everything_written_is_there_after_reopening(tmp_path, rng):
    vectors = unit(rng, 30)
    with open_store(tmp_path, snapshot_every=7) as store:  # snapshots interleaved with log records
        for i in range(30):
            store.put([NewItem(f"x{i}", vectors[i], {"i": i}, source=b"image %d" % i)])
        store.delete("x5")
    store = open_store(tmp_path)
    try:
        assert len(store) == 29 and "x5" not in store
        item = store.get("x7")
        assert item.metadata == {"i": 7} and np.allclose(item.vector, vectors[7], atol=1e-6)
        assert store.source_bytes(item.source) == b"image 7"
    finally:
        store.close(snapshot=False)


def test_a_crash_without_snapshot_is_recovered_from_the_log(tmp_path, rng):
    vectors = unit(rng, 5)
    store = open_store(tmp_path)
    store.put([NewItem(f"x{i}", vectors[i]) for i in range(5)])
    store.delete("x2")
    store.close(snapshot=False)  # like kill -9: only the log holds the writes
    assert [r.op for r in read_records(next(tmp_path.glob("wal-*.log")))] == ["put"] * 5 + ["delete"]
    with open_store(tmp_path) as store:
        assert sorted(r.id for r in store.items()) == ["x0", "x1", "x3", "x4"]


@pytest.mark.parametrize("cut", [1, HEADER.size - 1, HEADER.size + 5, -1])
def test_a_torn_last_record_is_ignored_and_cut(tmp_path, rng, cut):
    vectors = unit(rng, 3)
    store = open_store(tmp_path)
    store.put([NewItem("a", vectors[0]), NewItem("b", vectors[1])])
    wal = next(tmp_path.glob("wal-*.log"))
    whole = wal.stat().st_size
    store.put([NewItem("torn", vectors[2])])
    store.close(snapshot=False)
    record = wal.read_bytes()[whole:]
    # The last record, torn after `cut` bytes (or complete but with one flipped byte: bad crc).
    torn = record[:cut] if cut > 0 else record[:-1] + bytes([record[-1] ^ 0xFF])
    wal.write_bytes(wal.read_bytes()[:whole] + torn)
    with open_store(tmp_path) as store:
        assert sorted(r.id for r in store.items()) == ["a", "b"]
        assert wal.stat().st_size == whole  # cut back, so the next append follows a whole record
        store.put([NewItem("after", vectors[2])])
    with open_store(tmp_path) as store:
        assert sorted(r.id for r in store.items()) == ["a", "after", "b"]


def test_another_model_is_refused_with_the_reason(tmp_path, rng):
    with open_store(tmp_path) as store:
        store.put([NewItem("a", unit(rng)[0])])
    with pytest.raises(IndexMismatch, match="built by model model-a.*pcclip index rebuild"):
        IndexStore.open(tmp_path, fingerprint="model-b", embed_dim=DIM)
    with pytest.raises(IndexMismatch, match="embed dim"):
        IndexStore.open(tmp_path, fingerprint="model-a", embed_dim=DIM * 2)


def test_one_process_at_a_time(tmp_path):
    with open_store(tmp_path), pytest.raises(IndexBusy, match="open in another process"):
        open_store(tmp_path)


@pytest.mark.parametrize(
    "bad_id", ["../etc/passwd", "a/b", "..", ".hidden", "a\\b", "a b", "", "x" * 300, "a\x00b", "sources/../x"]
)
def test_ids_that_could_name_paths_are_refused(tmp_path, rng, bad_id):
    with open_store(tmp_path) as store, pytest.raises(InvalidInput, match="id"):
        store.put([NewItem(bad_id, unit(rng)[0])])
    assert not (tmp_path.parent / "etc").exists()


def test_bad_vectors_and_metadata_are_refused(tmp_path, rng):
    with open_store(tmp_path) as store:
        with pytest.raises(InvalidInput, match="size 8"):
            store.put([NewItem("a", np.ones(8, dtype=np.float32))])
        with pytest.raises(InvalidInput, match="zero or not finite"):
            store.put([NewItem("a", np.full(DIM, np.nan, dtype=np.float32))])
        with pytest.raises(InvalidInput, match="twice"):
            store.put([NewItem("a", unit(rng)[0]), NewItem("a", unit(rng)[0])])
        with pytest.raises(InvalidInput, match="JSON object"):
            store.put([NewItem("a", unit(rng)[0], metadata=[1, 2])])  # type: ignore[arg-type]
        assert len(store) == 0


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (nested(33), "nested more than 32 levels deep"),
        ({"x": float("nan")}, "NaN"),
        ({"x": [1, {"y": float("-inf")}]}, "-Infinity"),
        ({1: "one"}, "keys must be strings"),
        ({"x": {1, 2}}, "not JSON"),
        ({"x": "\ud800"}, "unpaired surrogate"),
    ],
)
def test_metadata_breaking_the_rules_is_refused_by_the_store(tmp_path, rng, metadata, expected):
    with open_store(tmp_path) as store:
        with pytest.raises(InvalidInput, match=expected):
            store.put([NewItem("a", unit(rng)[0], metadata)])
        store.put([NewItem("b", unit(rng)[0], nested(32))])
        assert len(store) == 1 and store.get("b").metadata == nested(32)


def test_metadata_the_index_already_holds_against_the_rules_is_withheld_and_reported(tmp_path, rng):
    """Items an older server stored (log records in the real format): each is served with empty
    metadata and the problem, never a failure; the stored metadata stays on disk; replacing or
    deleting the item clears it."""
    vectors = unit(rng, 4)
    with open_store(tmp_path) as store:
        store.put([NewItem("fine", vectors[0], {"colour": "red"})])
    held = {"deep": nested(300), "nan": {"colour": "red", "x": float("nan")}, "list": [1, 2]}
    wal = WriteAheadLog(next(tmp_path.glob("wal-*.log")))
    wal.append(
        [Record(2 + i, "put", item_id, value, None, vectors[1 + i]) for i, (item_id, value) in enumerate(held.items())]
    )
    wal.close()

    for source in ("log", "snapshot", "snapshot of an older server"):  # the first open replays the log
        if source == "snapshot of an older server":
            rewrite_items_as_before_the_rules(tmp_path)
        with open_store(tmp_path) as store:
            assert store.describe()["metadata_problems"] == 3, source
            assert store.get("fine").metadata == {"colour": "red"} and store.get("fine").metadata_problem is None
            assert all(store.get(item_id).metadata == {} for item_id in held)
            assert "nested more than 32 levels deep" in store.get("deep").metadata_problem
            assert "NaN" in store.get("nan").metadata_problem
            assert "must be a JSON object" in store.get("list").metadata_problem
            hits = store.search(vectors[1], 4)
            assert {h.id for h in hits} == {"fine", *held}
            assert all((h.metadata == {}) == (h.metadata_problem is not None) for h in hits)
            assert [h.id for h in store.search(vectors[2], 4, filter={"colour": "red"})] == ["fine"]
        assert held["list"] in json.loads(next(tmp_path.glob("items-*.json")).read_text())["metadata"]

    with open_store(tmp_path) as store:
        store.put([NewItem("deep", vectors[1], {"colour": "blue"})])
        store.delete("list")
        assert store.describe()["metadata_problems"] == 1
        assert store.get("deep").metadata == {"colour": "blue"} and store.get("deep").metadata_problem is None
    with open_store(tmp_path) as store:  # its close compacted the rows away from under the problems
        assert store.describe()["deleted_rows"] == 0 and store.describe()["metadata_problems"] == 1
        assert store.get("nan").metadata_problem and store.get("fine").metadata_problem is None


def rewrite_items_as_before_the_rules(folder) -> None:
    """Make the snapshot's items file one written before the metadata rules (and fix its sha256)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    path = folder / manifest["items"]
    items = json.loads(path.read_text())
    del items["metadata_rules"], items["withheld"]
    path.write_text(json.dumps(items))
    manifest["sha256"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_the_index_turns_approximate_beyond_the_exact_size_and_compacts(tmp_path, rng):
    vectors = unit(rng, 300)
    params = AnnParams(exact_max=100)
    with open_store(tmp_path, params=params) as store:
        store.put([NewItem(f"x{i}", vectors[i]) for i in range(300)])
        assert store.describe()["index_type"] == "flat"  # until the next snapshot
        store.snapshot()
        assert store.describe()["index_type"] == "hnsw"
        for i in range(100):
            store.delete(f"x{i}")
        store.snapshot()  # a third of the rows are tombstones: compacted away
        assert store.describe()["rows"] == 200 and store.describe()["deleted_rows"] == 0
        found = sum(store.search(vectors[i], 1)[0].id == f"x{i}" for i in range(100, 300))
        assert found >= 190  # HNSW finds (almost) every stored vector by itself
    with open_store(tmp_path, params=params) as store:  # the graph is reloaded, not rebuilt
        assert store.describe()["index_type"] == "hnsw" and len(store) == 200


def test_filtered_search_reaches_past_many_nonmatching_neighbours(tmp_path, rng):
    vectors = unit(rng, 400)
    with open_store(tmp_path, params=AnnParams(exact_max=50)) as store:
        store.put([NewItem(f"x{i}", vectors[i], {"group": "rare" if i % 100 == 0 else "common"}) for i in range(400)])
        store.snapshot()
        hits = store.search(vectors[1], 10, filter={"group": "rare"})
        assert sorted(h.id for h in hits) == ["x0", "x100", "x200", "x300"]


def test_readers_never_see_half_a_write(tmp_path, rng):
    """Writers put items in pairs (one write each); readers must always see both or neither."""
    store = open_store(tmp_path, params=AnnParams(exact_max=40), snapshot_every=25)
    vectors = unit(rng, 400)
    acknowledged: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def writer(first: int) -> None:
        for pair in range(first, 120, 2):
            v = vectors[pair]
            store.put([NewItem(f"p{pair}-a", v, {"pair": pair}), NewItem(f"p{pair}-b", v, {"pair": pair})])
            acknowledged.append(pair)
            if pair % 10 == 0:
                store.delete(f"p{pair}-a", f"p{pair}-b")

    def reader(seed: int) -> None:
        pick = random.Random(seed)
        while not stop.is_set():
            time.sleep(0.0005)
            if not acknowledged:
                continue
            pair = pick.choice(acknowledged)
            hits = store.search(vectors[pair], 4, filter={"pair": pair})
            if len(hits) not in (0, 2) or (hits and hits[0].score < 0.999):
                errors.append(f"pair {pair}: {[(h.id, h.score) for h in hits]}")
            if len(store) % 2:
                errors.append(f"odd size {len(store)}")

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    readers = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    expected = {f"p{p}-{s}" for p in range(120) if p % 10 for s in "ab"}
    assert {item.id for item in store.items()} == expected
    store.close()
    with open_store(tmp_path) as reopened:
        assert {item.id for item in reopened.items()} == expected


def test_a_failed_log_write_is_not_applied_and_leaves_no_partial_record(tmp_path, rng, monkeypatch):
    vectors = unit(rng, 2)
    store = open_store(tmp_path)
    real_fsync = __import__("os").fsync
    calls = {"n": 0}

    def failing_once(fd):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr("app.index.wal.os.fsync", failing_once)
    with pytest.raises(StorageFull, match="No space"):
        store.put([NewItem("lost", vectors[0])])
    assert "lost" not in store  # not acknowledged, not applied
    store.put([NewItem("kept", vectors[1])])
    store.close(snapshot=False)
    with open_store(tmp_path) as reopened:
        assert [item.id for item in reopened.items()] == ["kept"]


def test_rows_of_deleted_items_are_reclaimed_at_snapshots_so_churn_stays_bounded(tmp_path, rng):
    """The soak's slow RSS creep traced to this: deleted rows wait for the next snapshot."""
    store = open_store(tmp_path, snapshot_every=100)
    live: list[str] = []
    for i in range(1000):
        store.put([NewItem(f"item-{i}", unit(rng)[0], {"n": i}, source=rng.bytes(64))])
        live.append(f"item-{i}")
        if len(live) > 20:
            store.delete(live.pop(0))
        assert store.describe()["deleted_rows"] <= 100  # never more than a snapshot's worth of writes
    assert len(store) == 20 and {hit.id for hit in store.search(unit(rng)[0], k=50)} == set(live)
    store.close()


@pytest.mark.parametrize("exact_max", [1000, 50])  # a flat base, and an HNSW base with its graph
def test_a_later_snapshot_writes_only_what_changed_and_reopens_to_the_same_items(tmp_path, rng, exact_max):
    vectors = unit(rng, 160)
    store = open_store(tmp_path, params=AnnParams(exact_max=exact_max))
    store.put([NewItem(f"x{i}", vectors[i], {"i": i}) for i in range(100)])
    store.snapshot()  # full: the base (and, for HNSW, the graph)
    first = json.loads((tmp_path / "manifest.json").read_text())
    base = {name: (tmp_path / name).read_bytes() for name in first["sha256"]}

    store.put([NewItem(f"x{i}", vectors[i], {"i": i}) for i in range(100, 120)])
    store.put([NewItem("x7", vectors[120], {"i": 120})])  # replaced: row 7 dies, a new row holds it
    store.delete("x3", "x101")
    store.snapshot(full=False)
    second = json.loads((tmp_path / "manifest.json").read_text())
    assert (second["vectors"], second["items"], second["ann"]) == (first["vectors"], first["items"], first["ann"])
    assert all((tmp_path / name).read_bytes() == data for name, data in base.items())  # the base is not rewritten
    (delta,) = second["deltas"]
    assert np.load(tmp_path / delta["vectors"]).shape == (21, DIM)  # only the rows added since
    written = json.loads((tmp_path / delta["items"]).read_text())
    assert written["ids"][:2] == ["x100", None] and written["ids"][-1] == "x7" and written["dead"] == [3, 7]

    store.put([NewItem(f"x{i}", vectors[i], {"i": i}) for i in range(121, 130)])
    served = {item.id: (item.metadata, item.vector) for item in store.items()}
    store.close()  # a second delta
    assert len(json.loads((tmp_path / "manifest.json").read_text())["deltas"]) == 2
    with open_store(tmp_path, params=AnnParams(exact_max=exact_max)) as reopened:
        items = {item.id: (item.metadata, item.vector) for item in reopened.items()}
        assert items.keys() == served.keys() and "x3" not in items and "x101" not in items
        assert all(items[i][0] == served[i][0] and np.array_equal(items[i][1], served[i][1]) for i in items)
        assert reopened.search(vectors[125], 1)[0].id == "x125" and reopened.search(vectors[120], 1)[0].id == "x7"
        assert reopened.describe()["deleted_rows"] == 3 and reopened.describe()["snapshot_deltas"] == 2

        # Deltas past half the base's rows: the next snapshot merges everything into a new base.
        reopened.put([NewItem(f"x{i}", vectors[i], {"i": i}) for i in range(130, 160)])
        reopened.snapshot(full=False)
        merged = json.loads((tmp_path / "manifest.json").read_text())
        assert merged["deltas"] == [] and merged["vectors"] != first["vectors"]
        assert not any((tmp_path / name).exists() for name in first["sha256"])  # what it replaced is gone
    with open_store(tmp_path, params=AnnParams(exact_max=exact_max)) as again:
        assert len(again) == len(served) + 30
@pytest.mark.parametrize("kind", ["ivf-sq8", "ivf-pq"])
def test_a_compressed_kind_is_trained_at_the_snapshot_and_reloaded(tmp_path, rng, kind):
    vectors = unit(rng, 600)
    params = AnnParams(kind=kind, train_min=500, train_max=400, nlist_max=8, nprobe=8, refine_k_factor=40)
    with open_store(tmp_path, params=params) as store:
        store.put([NewItem(f"x{i}", vectors[i]) for i in range(300)])
        store.snapshot()
        assert store.describe()["index_type"] == "flat"  # too few rows to train
        store.put([NewItem(f"x{i}", vectors[i]) for i in range(300, 600)])
        store.snapshot()  # rebuilt: trained on a 400-row sample, every row added
        assert store.describe()["index_type"] == kind
        store.put([NewItem("late", vectors[0])])  # added to the trained index
    with open_store(tmp_path, params=params) as store:  # the trained index is reloaded
        assert store.describe()["index_type"] == kind and len(store) == 601
        assert sum(store.search(vectors[i], 1)[0].id == f"x{i}" for i in range(1, 200)) >= 190
        assert {h.id for h in store.search(vectors[0], 2)} == {"x0", "late"}
