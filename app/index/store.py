"""The FAISS index backend: a durable store of a folder, around the row table.

The folder holds `LOCK` (flock'ed by the one process that has the store open), the latest
snapshot (`manifest.json` and the data files it names: `app.index.snapshot`), `wal-<S>.log`
(the writes after S: `app.index.wal`) and `sources/<sha256>` (images: `app.index.blobs`).

Layers: `validation` checks writes, `rows.RowTable` holds and searches the rows (no I/O, no lock),
`snapshot` the files, `blobs` the images; here: the lock file, the log, recovery, snapshot cadence.

Durability protocol. A write (a batch of puts, or a delete) is acknowledged only after:
(1) each new source image is written to `sources/` and fsynced; (2) its WAL records (id,
metadata, source, embedding) are appended and fsynced. Only then is it applied in memory. A
snapshot writes its data files (temp, fsync, rename), then the manifest the same way, fsyncs
the folder, starts `wal-<S>.log` and deletes files no longer named. Recovery loads the
manifest's snapshot and replays the WAL records with a sequence number past it; a torn last
record (the process died mid-append, so it was never acknowledged) is dropped and cut off.

Snapshots. One taken by the cadence (every `snapshot_every` log records) or at close writes
only what changed since the last: a delta segment of the rows added since and the rows
deleted since. A full snapshot — one base segment of every row, compacted when a fifth of the
rows are tombstones, and the HNSW graph when the index is approximate — is written when
`snapshot()` is called, when the index changes kind or needs compaction, when the deltas hold
more than half as many rows as the base (so each row is rewritten O(1) times, amortized, and
an HNSW graph, written with the base only, has at most that many rows added when opened), or
when there are `MAX_DELTAS` of them.

Faults. Opening refuses (`IndexCorrupt`, so `/ready` says why) a manifest that does not parse,
a data file that is missing or does not hash to the manifest's sha256, a log damaged before
its end, or data files without a manifest — never a silently smaller or wrong index. A write
that hits a full disk is refused (`StorageFull`) and cut back off the log; a snapshot that
hits it leaves the committed snapshot untouched, removes its own partial files, and (when it
ran after a write) does not fail that write, which its log record already made durable.

Concurrency. Writers are serialized by a mutex held over the fsyncs; the in-memory state
changes only under the write side of a readers–writer lock, taken after the log is durable and
held just for the in-memory update, so searches run concurrently and never see half a write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import NotFound, NotReady
from app.index import ann, snapshot
from app.index.backend import Hit, IndexCorrupt, Item, NewItem, PutResult, check_stamp
from app.index.blobs import SourceFiles
from app.index.filters import Filter, as_filter
from app.index.folder import lock_folder, write_error
from app.index.rows import RowTable
from app.index.rwlock import RWLock
from app.index.snapshot import Manifest
from app.index.swap import no_swap
from app.index.validation import check_id, checked, unit_vector
from app.index.vectors import MappedVectors
from app.index.wal import CorruptLog, Record, WriteAheadLog, read_records
from common.files import fsync_dir, remove_temp_files

log = logging.getLogger(__name__)

MAX_DELTAS = 16  # delta segments before a full snapshot merges them
DELTA_MAX_FRACTION = 0.5  # delta rows, as a share of the base's, before a full snapshot


class IndexStore:
    """Open with `IndexStore.open(folder, fingerprint=..., embed_dim=...)`; thread-safe."""

    backend = "faiss"

    def __init__(self, directory: Path, manifest: Manifest, *, params: ann.AnnParams, snapshot_every: int) -> None:
        self.directory = directory
        self.fingerprint = manifest.fingerprint
        self.embed_dim = manifest.embed_dim
        self.params = params
        self.snapshot_every = snapshot_every
        self._rw = RWLock()
        self._write = threading.Lock()  # serializes writers (held over the fsyncs)
        self._lock_file: Any = None
        self._wal: WriteAheadLog | None = None
        self._sources = SourceFiles(directory / "sources")
        self._manifest = manifest  # the committed one
        self._seq = manifest.seq
        self._since_snapshot = 0
        self._snapshot_due = snapshot_every  # log records after which a write triggers a snapshot
        self._closed = False
        self._table = RowTable(self.embed_dim, params)
        # Rows of the committed snapshot (the first rows of the table), and of its base; None
        # when the table's rows no longer match it (compacted since): the next snapshot is full.
        self._committed_rows: int | None = 0
        self._base_rows = 0

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path | str,
        *,
        fingerprint: str | None,
        embed_dim: int | None = None,
        params: ann.AnnParams | None = None,
        snapshot_every: int = 10_000,
        spec: str | None = None,
    ) -> IndexStore:
        """Open (or create) the index at `directory` for the model with `fingerprint`.

        Raises `IndexMismatch` when it was built by another model (its message gives the
        `pcclip index rebuild` command for the model `spec`), `IndexBusy` when another process
        has it open, `IndexCorrupt` when a file of it is damaged or missing.
        `fingerprint=None` opens an existing index whatever its model (for `pcclip index rebuild`).
        """
        directory = Path(directory)
        with no_swap(directory):  # a rebuild's swap, a crash interrupted, is completed first
            directory.mkdir(exist_ok=True)
            lock_file = lock_folder(directory)
        try:
            manifest = snapshot.read_manifest(directory)
            if manifest is None:
                if fingerprint is None or embed_dim is None:
                    raise NotFound(f"no index at {directory}")
                manifest = Manifest(fingerprint, embed_dim)
                snapshot.write_manifest(directory, manifest)
                fsync_dir(directory)
            if fingerprint is not None:
                stamp = (manifest.fingerprint, manifest.embed_dim)
                check_stamp(str(directory.absolute()), stamp, fingerprint, embed_dim, spec)
            store = cls(directory, manifest, params=params or ann.AnnParams(), snapshot_every=snapshot_every)
            store._lock_file = lock_file
            store._recover()
        except BaseException:
            lock_file.close()
            raise
        return store

    def _recover(self) -> None:
        started = time.monotonic()
        remove_temp_files(self.directory)  # ours alone: we hold LOCK
        self._sources.remove_temp_files()
        self._table, self._base_rows = snapshot.load_table(self.directory, self._manifest, self.embed_dim, self.params)
        self._committed_rows = len(self._table.ids)
        replayed = 0
        for path in sorted(self.directory.glob("wal-*.log")):
            try:
                for record in read_records(path, repair=True):
                    if record.seq <= self._manifest.seq:
                        continue
                    self._table.apply([record])
                    self._seq = record.seq
                    replayed += 1
            except CorruptLog as error:
                raise IndexCorrupt(str(error)) from None
            except ValueError as error:
                raise snapshot.corrupt(path, f"holds a record that does not fit the index ({error})") from None
        self._since_snapshot = replayed
        self._wal = WriteAheadLog(self.directory / f"wal-{self._manifest.seq:012d}.log")
        self._log_opened(replayed, time.monotonic() - started)

    def _log_opened(self, replayed: int, seconds: float) -> None:
        table = self._table
        if table.problems:
            row, problem = next(iter(table.problems.items()))
            log.warning(
                "index %s: %d items hold metadata that breaks the metadata rules (e.g. %r: %s); they are "
                "served with empty metadata and `metadata_problem` until replaced",
                *(self.directory, len(table.problems), table.ids[row], problem),
            )
        opened = (self.directory, len(table), table.kind, replayed, seconds)
        log.info("index %s open: %d items (%s), %d log records replayed in %.2f s", *opened)

    # --- writes ----------------------------------------------------------------------------

    def put(self, items: Sequence[NewItem]) -> PutResult:
        """Add or replace items; returns once they are durable (WAL fsynced) and searchable."""
        self._check_open()
        items = checked(items)
        vectors = [unit_vector(item.vector, self.embed_dim, f"items[{i}]") for i, item in enumerate(items)]
        # Sources are content-addressed and durable before any log record names them; writing
        # them needs no lock (the same bytes land under the same name).
        try:
            sources = self._sources.store([item.source for item in items])
        except OSError as error:
            raise write_error(self.directory, error) from error
        with self._write:
            self._check_open()
            records = []
            for item, vector, source in zip(items, vectors, sources, strict=True):
                self._seq += 1
                records.append(Record(self._seq, "put", item.id, item.metadata, source, vector))
            replaced = {item.id for item in items if item.id in self._table.row}
            self._commit(records)
        return PutResult(
            added=[item.id for item in items if item.id not in replaced],
            replaced=[item.id for item in items if item.id in replaced],
        )

    def delete(self, *item_ids: str) -> None:
        """Remove items, all in one write (`NotFound` when one is absent: then none is removed);
        durable on return."""
        self._check_open()
        for item_id in item_ids:
            check_id(item_id)
        with self._write:
            for item_id in item_ids:
                if item_id not in self._table.row:
                    raise NotFound(f"no indexed item {item_id!r}")
            records = []
            for item_id in dict.fromkeys(item_ids):
                self._seq += 1
                records.append(Record(self._seq, "delete", item_id))
            self._commit(records)

    def _commit(self, records: list[Record]) -> None:
        """Log (fsync), then apply in memory; snapshot when the log is long. Holds `_write`.

        A refused log append (`StorageFull`, or `NotReady` for other I/O errors) leaves no trace;
        a failed snapshot afterwards does not fail the write, which is already durable.
        """
        assert self._wal is not None
        try:
            self._wal.append(records)
        except OSError as error:
            raise write_error(self.directory, error) from error
        with self._rw.write():
            self._table.apply(records, checked=True)  # `put` checked every record's metadata
        self._since_snapshot += len(records)
        if self._since_snapshot >= self._snapshot_due:
            try:
                self._snapshot_locked(full=False)
            except Exception:  # noqa: BLE001 — the log holds every write; the next snapshot retries
                self._snapshot_due = self._since_snapshot + self.snapshot_every
                log.exception("index %s: snapshot failed; every write is in the log", self.directory)

    # --- snapshots -------------------------------------------------------------------------

    def snapshot(self, *, full: bool = True) -> None:
        """Write a snapshot now and start a fresh log: a full one (compacting if worthwhile), or
        with `full=False` one of what changed since the last (see the module docstring)."""
        with self._write:
            self._check_open()
            self._snapshot_locked(full=full)

    def _snapshot_locked(self, *, full: bool) -> None:
        """Write the data files, commit them with the manifest, switch logs, drop old files.
        A failure (e.g. disk full) leaves the committed snapshot and its log as they were."""
        started = time.monotonic()
        full = full or self._wants_full()
        prepared = self._compact() if full and self._table.needs_compaction() else None
        since = None if full else self._committed_rows
        manifest = snapshot.write_snapshot(
            self.directory, self._table, self._manifest, self._seq, since=since, prepared=prepared
        )
        self._manifest, self._committed_rows = manifest, len(self._table.ids)
        if full:
            self._base_rows = len(self._table.ids)
        self._table.killed.clear()
        # Committed: a fresh log, what it replaced dropped, the rows it wrote served from their file.
        self._switch_log(manifest.seq, keep={*manifest.files})
        self._since_snapshot, self._snapshot_due = 0, self.snapshot_every
        if isinstance(vectors := self._table.vectors, MappedVectors):
            mapped = snapshot.map_vectors(self.directory / manifest.segments[-1].vectors)
            with self._rw.write():
                vectors.settle(since or 0, mapped)
        kind = "full" if full else f"delta {len(manifest.deltas)}"
        taken = (kind, manifest.seq, len(self._table), time.monotonic() - started)
        log.info("index snapshot (%s) at seq %d: %d items in %.2f s", *taken)

    def _wants_full(self) -> bool:
        if self._committed_rows is None or self._manifest.base is None or self._table.needs_compaction():
            return True
        delta_rows = len(self._table.ids) - self._base_rows
        return len(self._manifest.deltas) >= MAX_DELTAS or delta_rows > DELTA_MAX_FRACTION * self._base_rows

    def _switch_log(self, seq: int, keep: set[str]) -> None:
        wal_path = self.directory / f"wal-{seq:012d}.log"
        if self._wal is None or self._wal.path != wal_path:
            if self._wal is not None:
                self._wal.close()
            self._wal = WriteAheadLog(wal_path)
        snapshot.remove_unnamed(self.directory, keep | {self._wal.path.name})

    def _compact(self) -> str | None:
        """Drop tombstoned rows and rebuild the FAISS index (of the kind the size calls for).
        Built beside the live one (searches go on), swapped in under the write lock. Returns
        the vectors file a compressed kind's floats went to (`snapshot.compact`), or None."""
        table, prepared = snapshot.compact(self.directory, self._table, self._manifest, self._seq)
        with self._rw.write():
            self._table, self._committed_rows = table, None
        return prepared

    # --- reads -----------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._rw.read():
            return len(self._table)

    def __contains__(self, item_id: object) -> bool:
        with self._rw.read():
            return item_id in self._table.row

    def get(self, item_id: str) -> Item:
        with self._rw.read():
            row = self._table.row.get(item_id)
            if row is None:
                raise NotFound(f"no indexed item {item_id!r}")
            return self._table.item(row)

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Embeddings of indexed items (`NotFound` naming the first absent one).  -> (N, D)"""
        with self._rw.read():
            rows = []
            for item_id in ids:
                row = self._table.row.get(item_id)
                if row is None:
                    raise NotFound(f"no indexed item {item_id!r}")
                rows.append(row)
            return self._table.vectors[rows]  # (N, D) a copy

    def items(self) -> Iterator[Item]:
        """Every live item (a copy of the list taken at the call)."""
        with self._rw.read():
            table = self._table
            items = [table.item(row) for row in sorted(table.row.values())]
        yield from items

    def source_bytes(self, source: str) -> bytes:
        return self._sources.read(source)

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        filter: Filter | Mapping[str, Any] | None = None,
        exclude: Sequence[str] = (),
        min_score: float | None = None,
    ) -> list[Hit]:
        """The `k` live items most similar to `query` (cosine), best first, scoring at least `min_score`.

        `filter` (see `app.index.filters`): candidates are first the rows its equalities select
        from the postings, then those it matches. `exclude`: ids never returned.
        """
        q = unit_vector(query, self.embed_dim, "query")
        parsed = as_filter(filter)
        equal, matches = (parsed.equalities(), parsed.matches) if parsed else (None, None)
        with self._rw.read():
            return self._table.search(q, k, equal=equal, matches=matches, exclude=exclude, min_score=min_score)

    def describe(self) -> dict[str, Any]:
        with self._rw.read():
            table = self._table
            return {
                "backend": self.backend,
                "size": len(table),
                "fingerprint": self.fingerprint,
                "embed_dim": self.embed_dim,
                "index_type": table.kind,
                "exact": table.kind == "flat",
                "ef_search": self.params.ef_search_for(table.index.ntotal) if table.kind == "hnsw" else None,
                "rows": len(table.ids),
                "deleted_rows": table.dead,
                "wal_records": self._since_snapshot,
                "metadata_problems": len(table.problems),
                "snapshot_seq": self._manifest.seq,
                "snapshot_deltas": len(self._manifest.deltas),
                "path": str(self.directory),
            }

    def close(self, *, snapshot: bool = True) -> None:
        """Snapshot what changed (when the log holds anything) and release the folder. A failed
        snapshot (e.g. disk full) is logged: the log holds every write and is replayed at the next open."""
        with self._write:
            if self._closed:
                return
            try:
                if snapshot and self._since_snapshot:
                    self._snapshot_locked(full=False)
            except OSError:
                log.exception("index %s: snapshot at close failed; every write is in the log", self.directory)
            finally:
                self._closed = True
                if self._wal is not None:
                    self._wal.close()
                if self._lock_file is not None:
                    self._lock_file.close()

    def _check_open(self) -> None:
        if self._closed:
            raise NotReady("the index is closed")

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
