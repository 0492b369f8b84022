"""The durable index store: string ids + JSON metadata + source images around a FAISS index.

Files in the index folder:

    LOCK                  flock'ed by the one process that has the store open
    manifest.json         the commit point of the latest snapshot (written atomically), with
                          the sha256 of each of its data files
    vectors-<S>.npy       rows of the snapshot taken at sequence number S  (R, D) float32
    items-<S>.json        ids (null = tombstone), metadata and source of each row
    ann-<S>.faiss         the HNSW graph of those rows (absent for exact indexes: rebuilt on load)
                          (a snapshot retaken at the same S is named `<kind>-<S>.<n>.<ext>`, so
                          a committed file is never overwritten)
    wal-<S>.log           the write-ahead log of the writes after S (see `app.index.wal`)
    sources/<sha256>      the image bytes items were embedded from (for `pcclip index rebuild`)

Durability protocol. A write (a batch of puts, or a delete) is acknowledged only after:
(1) each new source image is written to `sources/` and fsynced; (2) its WAL records (id,
metadata, source, embedding) are appended and fsynced. Only then is it applied in memory. A
snapshot writes the data files (temp, fsync, rename), then the manifest the same way, fsyncs
the folder, starts `wal-<S>.log` and deletes older files. Recovery loads the manifest's
snapshot and replays the WAL records with a sequence number past it; a torn last record (the
process died mid-append, so it was never acknowledged) is dropped and cut off.

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

import errno
import fcntl
import hashlib
import json
import logging
import math
import re
import shlex
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from app.errors import InvalidInput, NotFound, NotReady, StorageFull
from app.index import ann
from app.index.metadata import METADATA_RULES, check_metadata, metadata_problem
from app.index.rwlock import RWLock
from app.index.wal import CorruptLog, Record, WriteAheadLog, read_records
from models.atomic import fsync_dir, remove_temp_files, write_atomic
from models.fingerprint import file_sha256

log = logging.getLogger(__name__)

FORMAT = 1
MAX_ID_CHARS = 256
# Ids are plain names: letters, digits and . _ - : @ + = (no '/', '\', '..', leading '.').
ID_PATTERN = re.compile(r"[A-Za-z0-9_](?:\.?[A-Za-z0-9_:@+=-])*\.?")  # no "..", no leading "."
EXACT_FILTER_MAX = 20_000  # a filter matching at most this many items is searched exactly
COMPACT_DEAD_FRACTION = 0.2
DATA_FILE = re.compile(r"(vectors|items|ann)-\d{12}(\.\d+)?\.\w+|wal-\d{12}\.log")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class IndexMismatch(NotReady):
    """The index was built by another model (fingerprint or embedding size differ)."""


class IndexBusy(NotReady):
    """Another process has the index open."""


class IndexCorrupt(NotReady):
    """A file of the index is damaged or missing; the message names it and says what to do."""


def _write_error(directory: Path, error: OSError) -> NotReady | StorageFull:
    """The service error for a write the disk refused (nothing of it was kept)."""
    if error.errno in DISK_FULL:
        return StorageFull(f"index {directory}: disk full ({error.strerror}); the write was not stored")
    return NotReady(f"index {directory}: the write could not be stored ({error})")


def check_id(item_id: str, where: str = "id") -> str:
    if not isinstance(item_id, str) or not item_id:
        raise InvalidInput(f"{where}: empty id")
    if len(item_id) > MAX_ID_CHARS:
        raise InvalidInput(f"{where}: id of {len(item_id)} characters; at most {MAX_ID_CHARS}")
    if ".." in item_id or not ID_PATTERN.fullmatch(item_id):
        raise InvalidInput(
            f"{where}: invalid id {item_id[:64]!r}: use letters, digits and . _ - : @ + = "
            "(no '/', '\\', '..', spaces, or a leading '.')"
        )
    return item_id


def _posting_key(key: str, value: Any) -> tuple[str, str]:
    return key, json.dumps(value, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class NewItem:
    """One item to put: `source` is the image file's bytes, or a path to it (CLI builds)."""

    id: str
    vector: np.ndarray  # (D,)
    metadata: dict[str, Any] = field(default_factory=dict)
    source: bytes | Path | None = None


@dataclass(frozen=True)
class Item:
    id: str
    metadata: dict[str, Any]  # {} when withheld (see `metadata_problem`)
    source: str | None  # "blob:<sha256>" or "path:<absolute path>"
    vector: np.ndarray  # (D,)
    metadata_problem: str | None = None  # why the stored metadata is withheld (it breaks the rules)


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    metadata: dict[str, Any]  # {} when withheld (see `metadata_problem`)
    vector: np.ndarray  # (D,)
    metadata_problem: str | None = None


@dataclass(frozen=True)
class PutResult:
    added: list[str]
    replaced: list[str]


class IndexStore:
    """Open with `IndexStore.open(folder, fingerprint=..., embed_dim=...)`; thread-safe."""

    def __init__(
        self, directory: Path, *, fingerprint: str, embed_dim: int, params: ann.AnnParams, snapshot_every: int
    ) -> None:
        self.directory = directory
        self.fingerprint = fingerprint
        self.embed_dim = embed_dim
        self.params = params
        self.snapshot_every = snapshot_every
        self._rw = RWLock()
        self._write = threading.Lock()  # serializes writers (held over the fsyncs)
        self._lock_file: Any = None
        self._wal: WriteAheadLog | None = None
        self._manifest: dict[str, Any] = {}  # the committed one
        self._snapshot_seq = 0
        self._seq = 0
        self._since_snapshot = 0
        self._snapshot_due = snapshot_every  # log records after which a write triggers a snapshot
        self._closed = False
        # Rows: row r holds vectors[r]; ids[r] is None once the row is deleted or replaced.
        self._vectors = np.zeros((0, embed_dim), dtype=np.float32)
        self._n = 0
        self._ids: list[str | None] = []
        self._metadata: list[dict[str, Any]] = []
        self._sources: list[str | None] = []
        self._row: dict[str, int] = {}
        self._postings: dict[tuple[str, str], set[int]] = {}
        # Rows whose stored metadata breaks the rules (written before they were enforced): kept
        # on disk as written, served as {} with the problem, in no posting; replacing clears it.
        self._problems: dict[int, str] = {}
        self._index: faiss.Index = ann.new_index("flat", embed_dim, params)

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
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "sources").mkdir(exist_ok=True)
        lock_file = open(directory / "LOCK", "a")  # noqa: SIM115 — held while open
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise IndexBusy(
                f"index {directory} is open in another process (one process owns an index folder): "
                "stop that process, or give this one a folder of its own (PCCLIP_INDEX_DIR, --index-dir)"
            ) from None
        try:
            manifest = _read_manifest(directory)
            if manifest is None:
                if fingerprint is None or embed_dim is None:
                    raise NotFound(f"no index at {directory}")
                manifest = {"format": FORMAT, "fingerprint": fingerprint, "embed_dim": embed_dim, "seq": 0}
                write_atomic(directory / "manifest.json", json.dumps(manifest).encode())
            _check_stamp(directory, manifest, fingerprint, embed_dim, spec)
            store = cls(
                directory,
                fingerprint=manifest["fingerprint"],
                embed_dim=int(manifest["embed_dim"]),
                params=params or ann.AnnParams(),
                snapshot_every=snapshot_every,
            )
            store._lock_file = lock_file
            store._recover(manifest)
        except BaseException:
            lock_file.close()
            raise
        return store

    def _recover(self, manifest: dict[str, Any]) -> None:
        started = time.monotonic()
        for folder in (self.directory, self.directory / "sources"):  # ours alone: we hold LOCK
            remove_temp_files(folder)
        seq = int(manifest["seq"])
        if manifest.get("vectors"):
            self._load_snapshot(manifest)
        self._manifest = manifest
        self._snapshot_seq = self._seq = seq
        replayed = 0
        for path in _wal_files(self.directory):
            try:
                for record in read_records(path, repair=True):
                    if record.seq <= seq:
                        continue
                    self._apply([record])
                    self._seq = record.seq
                    replayed += 1
            except CorruptLog as error:
                raise IndexCorrupt(str(error)) from None
        self._since_snapshot = replayed
        self._wal = WriteAheadLog(self.directory / f"wal-{seq:012d}.log")
        if self._problems:
            row, problem = next(iter(self._problems.items()))
            log.warning(
                "index %s: %d items hold metadata that breaks the metadata rules (e.g. %r: %s); they are "
                "served with empty metadata and `metadata_problem` until replaced",
                self.directory,
                len(self._problems),
                self._ids[row],
                problem,
            )
        log.info(
            "index %s open: %d items (%s), %d log records replayed in %.2f s",
            self.directory,
            len(self._row),
            ann.kind_of(self._index),
            replayed,
            time.monotonic() - started,
        )

    def _load_snapshot(self, manifest: dict[str, Any]) -> None:
        """Load the manifest's data files, each checked against its recorded sha256."""
        names = {kind: manifest.get(kind) for kind in ("vectors", "items", "ann")}
        recorded = manifest.get("sha256") or {}  # absent in snapshots written before checksums
        for name in filter(None, names.values()):
            path = self.directory / name
            if not path.is_file():
                raise _corrupt(path, "is missing")
            if name in recorded and file_sha256(path) != recorded[name]:
                raise _corrupt(path, "does not match the sha256 recorded in manifest.json")
        path = self.directory / names["vectors"]
        try:
            vectors = np.load(path, allow_pickle=False)  # (R, D)
            path = self.directory / names["items"]
            items = json.loads(path.read_text())
            ids, metadata, sources = items["ids"], items["metadata"], items["sources"]
            if vectors.shape != (len(ids), self.embed_dim) or not len(ids) == len(metadata) == len(sources):
                raise ValueError(f"vectors of shape {vectors.shape} for {len(ids)} items")
            withheld = None  # rows of a snapshot written under these rules were checked then: only these break them
            if items.get("metadata_rules") == METADATA_RULES:
                withheld = {row: problem for row in items["withheld"] if (problem := metadata_problem(metadata[row]))}
            self._load_rows(vectors, ids, metadata, sources, withheld)
            if names["ann"]:
                path = self.directory / names["ann"]
                self._index = faiss.read_index(str(path))
                if self._index.ntotal != self._n:
                    raise ValueError(f"{self._index.ntotal} vectors in the graph, {self._n} rows")
            else:
                self._index = ann.new_index("flat", self.embed_dim, self.params)
                self._index.add(self._vectors[: self._n])
        except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError) as error:
            raise _corrupt(path, f"cannot be read ({type(error).__name__}: {error})") from None

    def _load_rows(
        self, vectors: np.ndarray, ids: list, metadata: list, sources: list, withheld: dict[int, str] | None = None
    ) -> None:
        """Take these rows. `withheld`: the rows already known to break the metadata rules, with
        the problem (every other row is known to keep them); None: check every row."""
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._n = len(ids)
        self._ids, self._metadata, self._sources = list(ids), list(metadata), list(sources)
        self._row, self._postings, self._problems = {}, {}, {}
        for row, item_id in enumerate(self._ids):
            if item_id is not None:
                self._row[item_id] = row
                if withheld is None:
                    self._take_metadata(row, self._metadata[row])
                elif row in withheld:
                    self._problems[row] = withheld[row]
                else:
                    self._post(row, self._metadata[row])

    # --- writes ----------------------------------------------------------------------------

    def put(self, items: Sequence[NewItem]) -> PutResult:
        """Add or replace items; returns once they are durable (WAL fsynced) and searchable."""
        self._check_open()
        seen = set()
        for i, item in enumerate(items):
            check_id(item.id, f"items[{i}].id")
            check_metadata(item.metadata, f"items[{i}].metadata")
            if item.id in seen:
                raise InvalidInput(f"items[{i}].id: {item.id!r} appears twice in the request")
            seen.add(item.id)
        vectors = [self._unit(item.vector, f"items[{i}]") for i, item in enumerate(items)]
        # Sources are content-addressed and durable before any log record names them; writing
        # them needs no lock (the same bytes land under the same name).
        try:
            sources = self._store_sources([item.source for item in items])
        except OSError as error:
            raise _write_error(self.directory, error) from error
        with self._write:
            self._check_open()
            records = []
            for item, vector, source in zip(items, vectors, sources, strict=True):
                self._seq += 1
                records.append(Record(self._seq, "put", item.id, item.metadata or {}, source, vector))
            replaced = {item.id for item in items if item.id in self._row}
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
                if item_id not in self._row:
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
            raise _write_error(self.directory, error) from error
        with self._rw.write():
            self._apply(records, checked=True)  # `put` checked every record's metadata
        self._since_snapshot += len(records)
        if self._since_snapshot >= self._snapshot_due:
            try:
                self._snapshot_locked()
            except Exception:  # noqa: BLE001 — the log holds every write; the next snapshot retries
                self._snapshot_due = self._since_snapshot + self.snapshot_every
                log.exception("index %s: snapshot failed; every write is in the log", self.directory)

    def _apply(self, records: Sequence[Record], checked: bool = False) -> None:
        """The in-memory effect of records (caller holds the write side of `_rw`, or is alone).
        `checked`: their metadata is known to keep the rules (a live write); a replayed record's
        is checked here (it may predate them)."""
        puts = [r for r in records if r.op == "put"]
        for record in records:
            old = self._row.pop(record.id, None)
            if old is not None:
                self._unpost(old, self._metadata[old])
                self._ids[old] = None
            if record.op == "put":
                row = self._append_row(record, checked)
                self._row[record.id] = row
        if puts:
            start = self._n - len(puts)
            self._index.add(self._vectors[start : self._n])

    def _append_row(self, record: Record, checked: bool) -> int:
        if self._n == len(self._vectors):
            grown = np.zeros((max(16, 2 * self._n), self.embed_dim), dtype=np.float32)
            grown[: self._n] = self._vectors[: self._n]
            self._vectors = grown
        row = self._n
        self._vectors[row] = record.vector
        self._ids.append(record.id)
        self._metadata.append(record.metadata or {})
        self._sources.append(record.source)
        if checked:
            self._post(row, record.metadata or {})
        else:
            self._take_metadata(row, record.metadata or {})
        self._n += 1
        return row

    def _take_metadata(self, row: int, metadata: Any) -> None:
        """Index a row's metadata for filters, or withhold it when it breaks the rules."""
        problem = metadata_problem(metadata)
        if problem is not None:
            self._problems[row] = problem
        else:
            self._post(row, metadata)

    def _post(self, row: int, metadata: Mapping[str, Any]) -> None:
        for key, value in metadata.items():
            self._postings.setdefault(_posting_key(key, value), set()).add(row)

    def _unpost(self, row: int, metadata: Any) -> None:
        if self._problems.pop(row, None) is not None:
            return
        for key, value in metadata.items():
            rows = self._postings.get(_posting_key(key, value))
            if rows is not None:
                rows.discard(row)
                if not rows:
                    del self._postings[_posting_key(key, value)]

    def _unit(self, vector: np.ndarray, where: str) -> np.ndarray:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.embed_dim:
            raise InvalidInput(f"{where}: embedding of size {v.shape[0]}; the index holds {self.embed_dim}")
        norm = float(np.linalg.norm(v))
        if not math.isfinite(norm) or norm < 1e-12:
            raise InvalidInput(f"{where}: embedding is zero or not finite")
        return v / norm

    def _store_sources(self, sources: Sequence[bytes | Path | None]) -> list[str | None]:
        """Write new source images to `sources/` (fsynced, one folder fsync); their references."""
        refs: list[str | None] = []
        written = False
        for source in sources:
            if source is None:
                refs.append(None)
            elif isinstance(source, Path):
                refs.append(f"path:{source.resolve()}")
            else:
                digest = hashlib.sha256(source).hexdigest()
                path = self.directory / "sources" / digest
                if not path.exists():
                    write_atomic(path, source, sync_dir=False)
                    written = True
                refs.append(f"blob:{digest}")
        if written:
            fsync_dir(self.directory / "sources")
        return refs

    # --- snapshots -------------------------------------------------------------------------

    def snapshot(self) -> None:
        """Write a snapshot now (compacting if worthwhile) and start a fresh log."""
        with self._write:
            self._check_open()
            self._snapshot_locked()

    def _snapshot_locked(self) -> None:
        """Write the data files, commit them with the manifest, switch logs, drop old files.

        On any failure (e.g. disk full) before the manifest is replaced, the files written so
        far are removed and the committed snapshot and its log stay exactly as they were.
        """
        started = time.monotonic()
        seq = self._seq
        if self._needs_compaction():
            self._compact()
        n = self._n
        kind = ann.kind_of(self._index)
        names = {
            "vectors": self._fresh_name("vectors", seq, "npy"),
            "items": self._fresh_name("items", seq, "json"),
            "ann": self._fresh_name("ann", seq, "faiss") if kind != "flat" else None,
        }
        items = {
            "ids": self._ids[:n],
            "metadata": self._metadata[:n],
            "sources": self._sources[:n],
            "metadata_rules": METADATA_RULES,  # every row was checked under them; these rows break them:
            "withheld": sorted(self._problems),
        }
        writers = {
            "vectors": lambda tmp: _save_npy(tmp, self._vectors[:n]),
            "items": json.dumps(items, ensure_ascii=False).encode(),
            "ann": lambda tmp: faiss.write_index(self._index, str(tmp)),
        }
        manifest = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "embed_dim": self.embed_dim,
            "seq": seq,
            **names,
            "sha256": {},
            "index_type": kind,
            "size": len(self._row),
            "written_at": time.time(),
        }
        try:
            for key, name in names.items():
                if name is not None:
                    write_atomic(self.directory / name, writers[key], sync_dir=False)
                    manifest["sha256"][name] = file_sha256(self.directory / name)
            fsync_dir(self.directory)
            write_atomic(self.directory / "manifest.json", json.dumps(manifest, indent=1).encode(), sync_dir=False)
        except BaseException:
            for name in filter(None, names.values()):  # never the committed snapshot's (`_fresh_name`)
                (self.directory / name).unlink(missing_ok=True)
            raise
        self._manifest = manifest
        # The snapshot is committed; switch to a fresh log and drop what it replaced.
        wal_path = self.directory / f"wal-{seq:012d}.log"
        if self._wal is None or self._wal.path != wal_path:
            if self._wal is not None:
                self._wal.close()
            self._wal = WriteAheadLog(wal_path)
        keep = {*names.values(), self._wal.path.name}
        for path in self.directory.iterdir():
            if path.is_file() and DATA_FILE.fullmatch(path.name) and path.name not in keep:
                path.unlink()
        fsync_dir(self.directory)
        self._snapshot_seq, self._since_snapshot, self._snapshot_due = seq, 0, self.snapshot_every
        log.info("index snapshot at seq %d: %d items in %.2f s", seq, len(self._row), time.monotonic() - started)

    def _fresh_name(self, kind: str, seq: int, extension: str) -> str:
        """`<kind>-<seq>.<extension>`, or `<kind>-<seq>.<n>.<extension>` when the committed
        snapshot already uses that name (a snapshot retaken at the same sequence number)."""
        committed = {self._manifest.get(key) for key in ("vectors", "items", "ann")}
        name, n = f"{kind}-{seq:012d}.{extension}", 0
        while name in committed:
            n += 1
            name = f"{kind}-{seq:012d}.{n}.{extension}"
        return name

    def _needs_compaction(self) -> bool:
        dead = self._n - len(self._row)
        wrong_kind = ann.kind_of(self._index) != self.params.kind_for(len(self._row))
        return wrong_kind or (dead > 0 and dead >= COMPACT_DEAD_FRACTION * self._n)

    def _compact(self) -> None:
        """Drop tombstoned rows and rebuild the FAISS index (of the kind the size calls for).
        Built beside the live one (searches go on), swapped in under the write lock."""
        live = [row for row in range(self._n) if self._ids[row] is not None]
        vectors = self._vectors[live]  # (L, D) copy
        index = ann.build_index(self.params.kind_for(len(live)), vectors, self.params)  # trains a compressed kind
        with self._rw.write():
            self._load_rows(
                vectors,
                [self._ids[r] for r in live],
                [self._metadata[r] for r in live],
                [self._sources[r] for r in live],
                {new: self._problems[old] for new, old in enumerate(live) if old in self._problems},
            )
            self._index = index

    # --- reads -----------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._rw.read():
            return len(self._row)

    def __contains__(self, item_id: object) -> bool:
        with self._rw.read():
            return item_id in self._row

    def get(self, item_id: str) -> Item:
        with self._rw.read():
            row = self._row.get(item_id)
            if row is None:
                raise NotFound(f"no indexed item {item_id!r}")
            return self._item(row)

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Embeddings of indexed items (`NotFound` naming the first absent one).  -> (N, D)"""
        with self._rw.read():
            rows = []
            for item_id in ids:
                row = self._row.get(item_id)
                if row is None:
                    raise NotFound(f"no indexed item {item_id!r}")
                rows.append(row)
            return self._vectors[rows].copy()

    def items(self) -> Iterator[Item]:
        """Every live item (a copy of the list taken at the call)."""
        with self._rw.read():
            rows = sorted(self._row.values())
            snapshot = [self._item(r) for r in rows]
        yield from snapshot

    def source_bytes(self, source: str) -> bytes:
        kind, _, ref = source.partition(":")
        if kind == "blob":
            return (self.directory / "sources" / ref).read_bytes()
        if kind == "path":
            return Path(ref).read_bytes()
        raise ValueError(f"unknown source {source!r}")

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        filter: Mapping[str, Any] | None = None,
        exclude: Sequence[str] = (),
    ) -> list[Hit]:
        """The `k` live items most similar to `query` (cosine), best first.

        `filter`: items whose metadata has each key with exactly that value. `exclude`: ids
        never returned. Small filtered sets are scanned exactly; otherwise the ANN index is
        asked for more than `k` (doubling) until `k` hits pass the tombstones and the filter.
        """
        q = self._unit(query, "query")
        with self._rw.read():
            excluded = {self._row[i] for i in exclude if i in self._row}
            allowed = self._filtered_rows(filter) if filter else None
            if allowed is not None:
                allowed -= excluded
                if len(allowed) <= EXACT_FILTER_MAX:
                    return self._exact(q, k, sorted(allowed))
            return self._approximate(q, k, allowed, excluded)

    def _filtered_rows(self, filter: Mapping[str, Any]) -> set[int]:
        sets = [self._postings.get(_posting_key(key, value), set()) for key, value in filter.items()]
        sets.sort(key=len)
        return set.intersection(*map(set, sets)) if sets else set(self._row.values())

    def _exact(self, q: np.ndarray, k: int, rows: list[int]) -> list[Hit]:
        if not rows:
            return []
        scores = self._vectors[rows] @ q  # (R,)
        top = np.argsort(-scores, kind="stable")[:k]
        return [self._hit(rows[i], float(scores[i])) for i in top]

    def _approximate(self, q: np.ndarray, k: int, allowed: set[int] | None, excluded: set[int]) -> list[Hit]:
        total = self._index.ntotal
        live = len(self._row) - len(excluded)
        if live <= 0 or total == 0:
            return []
        # Expected share of rows that pass: live, not excluded, in the filter.
        passing = len(allowed) if allowed is not None else live
        fetch = min(total, math.ceil(k * total / max(passing, 1) * 1.2) + len(excluded) + 8)
        while True:
            scores, rows = ann.search(self._index, q, fetch, self.params)
            hits = []
            for score, row in zip(scores.tolist(), rows.tolist(), strict=True):
                if row < 0 or self._ids[row] is None or row in excluded:
                    continue
                if allowed is not None and row not in allowed:
                    continue
                hits.append(self._hit(row, score))
                if len(hits) == k:
                    return hits
            if fetch >= total:
                return hits
            fetch = min(total, fetch * 4)

    def _item(self, row: int) -> Item:
        """The live row as served: withheld metadata as {} with its problem."""
        problem = self._problems.get(row)
        metadata = {} if problem is not None else self._metadata[row]
        return Item(self._ids[row], metadata, self._sources[row], self._vectors[row].copy(), problem)  # type: ignore[arg-type]

    def _hit(self, row: int, score: float) -> Hit:
        item = self._item(row)
        return Hit(item.id, score, item.metadata, item.vector, item.metadata_problem)

    def describe(self) -> dict[str, Any]:
        with self._rw.read():
            kind = ann.kind_of(self._index)
            return {
                "size": len(self._row),
                "fingerprint": self.fingerprint,
                "embed_dim": self.embed_dim,
                "index_type": kind,
                "exact": kind == "flat",
                "ef_search": self.params.ef_search_for(self._index.ntotal) if kind == "hnsw" else None,
                "rows": self._n,
                "deleted_rows": self._n - len(self._row),
                "wal_records": self._since_snapshot,
                "metadata_problems": len(self._problems),
                "snapshot_seq": self._snapshot_seq,
                "path": str(self.directory),
            }

    # --- closing ---------------------------------------------------------------------------

    def close(self, *, snapshot: bool = True) -> None:
        """Snapshot (when the log holds anything) and release the folder. A failed snapshot
        (e.g. disk full) is logged: the log holds every write and is replayed at the next open."""
        with self._write:
            if self._closed:
                return
            try:
                if snapshot and self._since_snapshot:
                    self._snapshot_locked()
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


def _corrupt(path: Path, problem: str) -> IndexCorrupt:
    return IndexCorrupt(
        f"index file {path} {problem}. Restore the index folder {path.parent} from a backup, "
        "or move it aside and index the images again (`pcclip index build`)"
    )


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / "manifest.json"
    if not path.exists():
        leftovers = sorted(p.name for p in directory.iterdir() if DATA_FILE.fullmatch(p.name))
        if leftovers:  # opening would start an empty index and delete these at its first snapshot
            raise _corrupt(path, f"is missing, but the folder holds index data ({', '.join(leftovers[:3])})")
        return None
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError(f"a JSON {type(manifest).__name__}, not an object")
        if manifest.get("format") != FORMAT:
            raise NotReady(
                f"index {directory} has format {manifest.get('format')!r}; this server reads format {FORMAT}"
            )
        for key, kind in (("fingerprint", str), ("embed_dim", int), ("seq", int)):
            if not isinstance(manifest.get(key), kind):
                raise ValueError(f"{key!r} is missing or malformed")
    except (ValueError, UnicodeDecodeError) as error:
        raise _corrupt(path, f"cannot be read ({error})") from None
    return manifest


def _check_stamp(
    directory: Path, manifest: dict[str, Any], fingerprint: str | None, embed_dim: int | None, spec: str | None
) -> None:
    if fingerprint is None:
        return
    if manifest["fingerprint"] != fingerprint or (embed_dim is not None and int(manifest["embed_dim"]) != embed_dim):
        rebuild = shlex.join(
            ["pcclip", "index", "rebuild", "--index-dir", str(directory.absolute()), "--model", spec or "SPEC"]
        )
        raise IndexMismatch(
            f"index {directory} was built by model {manifest['fingerprint'][:12]} "
            f"(embed dim {manifest['embed_dim']}); the served model is {spec or 'another'} ({fingerprint[:12]}, "
            f"embed dim {embed_dim}). To re-embed it with this model, run `{rebuild}` (while no process has "
            "the folder open), then restart what refused it; or point PCCLIP_INDEX_DIR at another folder."
        )


def _wal_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("wal-*.log"))


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)
