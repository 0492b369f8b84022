"""The snapshot format of a FAISS index folder: the manifest and the data files it commits.

    manifest.json        the commit point (written atomically): a `Manifest`, naming every data
                         file below with its sha256
    vectors-<S>.npy      the rows of one segment, taken at sequence number S    (R, D) float32
    items-<S>.json       ids (null = tombstone), metadata and source of each of those rows; the
                         rows that break the metadata rules they were checked under; and, in a
                         delta, `dead`: the rows of earlier segments deleted or replaced since
    ann-<S>.faiss        the HNSW graph over the base segment's rows (absent for exact indexes,
                         whose flat index is rebuilt on load)

A snapshot is a base segment plus up to `MAX_DELTAS` delta segments, each appended by a later
snapshot that wrote only what changed since the one before (see `IndexStore.snapshot`); rows are
numbered across the segments in order. A file is never rewritten under a committed name: a
snapshot retaken at the same S names its files `<kind>-<S>.<n>.<ext>` (`fresh_name`); and every
file is written under a temp name and renamed into place, never written where it lies, so a
table that memory-maps a segment's vectors (`app.index.vectors`) reads what was committed.

Vectors are written and read a chunk at a time (`write_vectors`, `read_segment`'s memory map),
never all in memory at once: a compressed kind's compaction writes its live rows' floats to a
new vectors file (`compact`), which the full snapshot that follows commits as its base's.

Format 1 (a base only) is read as such; format 2 adds `deltas`. A server that reads only
format 1 refuses a format-2 folder with a message rather than losing its deltas.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from app.errors import NotReady
from app.index import ann
from app.index.backend import IndexCorrupt
from app.index.metadata import METADATA_RULES, metadata_problem
from app.index.rows import RowTable
from common.files import file_sha256, fsync_dir, write_atomic

FORMAT = 2
READS = (1, 2)
MANIFEST = "manifest.json"
DATA_FILE = re.compile(r"(vectors|items|ann)-\d{12}(\.\d+)?\.\w+|wal-\d{12}\.log")


@dataclass(frozen=True)
class Segment:
    vectors: str  # file names in the folder
    items: str


@dataclass(frozen=True)
class Manifest:
    fingerprint: str
    embed_dim: int
    seq: int = 0  # log records up to this one are in the snapshot
    base: Segment | None = None  # None: an empty index, never snapshotted
    ann: str | None = None  # the HNSW graph over the base's rows
    deltas: tuple[Segment, ...] = ()
    sha256: Mapping[str, str] = field(default_factory=dict)  # file name -> digest
    index_type: str = "flat"
    size: int = 0  # live items
    written_at: float = 0.0
    format: int = FORMAT

    @property
    def segments(self) -> tuple[Segment, ...]:
        return ((self.base,) if self.base else ()) + self.deltas

    @property
    def files(self) -> list[str]:
        names = [name for segment in self.segments for name in (segment.vectors, segment.items)]
        return names + ([self.ann] if self.ann else [])

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"format": self.format, "fingerprint": self.fingerprint, "embed_dim": self.embed_dim}
        body["seq"] = self.seq
        if self.base is not None:  # the base under format 1's names
            body |= {"vectors": self.base.vectors, "items": self.base.items, "ann": self.ann}
        body["deltas"] = [{"vectors": s.vectors, "items": s.items} for s in self.deltas]
        body |= {"sha256": dict(self.sha256), "index_type": self.index_type, "size": self.size}
        body["written_at"] = self.written_at
        return json.dumps(body, indent=1).encode()

    @classmethod
    def from_json(cls, body: Any) -> Manifest:
        """The manifest of a parsed manifest.json (`ValueError` saying what is malformed)."""
        if not isinstance(body, dict):
            raise ValueError(f"a JSON {type(body).__name__}, not an object")
        for key, kind in (("fingerprint", str), ("embed_dim", int), ("seq", int)):
            if not isinstance(body.get(key), kind):
                raise ValueError(f"{key!r} is missing or malformed")
        base = Segment(_name(body, "vectors"), _name(body, "items")) if body.get("vectors") else None
        deltas = tuple(Segment(_name(d, "vectors"), _name(d, "items")) for d in _list(body, "deltas"))
        sha256 = body.get("sha256")
        sha256 = {} if sha256 is None else sha256  # absent in snapshots written before checksums
        if not isinstance(sha256, dict) or not all(isinstance(d, str) for d in sha256.values()):
            raise ValueError("'sha256' is malformed")
        if deltas and base is None:
            raise ValueError("'deltas' without a base segment")
        return cls(
            body["fingerprint"],
            body["embed_dim"],
            body["seq"],
            base,
            _name(body, "ann") if body.get("ann") else None,
            deltas,
            sha256,
            str(body.get("index_type", "flat")),
            int(body.get("size", 0)),
            float(body.get("written_at", 0.0)),
            body["format"],
        )


def _name(body: Mapping[str, Any], key: str) -> str:
    """A data file name of the manifest: only names this format writes (never a path elsewhere)."""
    name = body.get(key) if isinstance(body, Mapping) else None
    if not isinstance(name, str) or not DATA_FILE.fullmatch(name) or name.startswith("wal-"):
        raise ValueError(f"{key!r} is not a data file name ({name!r})")
    return name


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key!r} is not a list")
    return value


@dataclass
class SegmentRows:
    """The rows of one segment, as written and as read."""

    vectors: np.ndarray | None  # (R, D); None when read without them (a graph holds them)
    ids: list[str | None]
    metadata: list[Any]
    sources: list[str | None]
    withheld: dict[int, str] | None  # rows (0-based here) that break the rules; None: unknown, check each
    dead: list[int] = field(default_factory=list)  # rows of earlier segments tombstoned since


def corrupt(path: Path, problem: str) -> IndexCorrupt:
    return IndexCorrupt(
        f"index file {path} {problem}. Restore the index folder {path.parent} from a backup, "
        "or move it aside and index the images again (`pcclip index build`)"
    )


def read_manifest(directory: Path) -> Manifest | None:
    """The committed manifest; None for a folder with no index (`IndexCorrupt` when data files
    lie there without one: opening would start an empty index and delete them)."""
    path = directory / MANIFEST
    if not path.exists():
        leftovers = sorted(p.name for p in directory.iterdir() if DATA_FILE.fullmatch(p.name))
        if leftovers:
            raise corrupt(path, f"is missing, but the folder holds index data ({', '.join(leftovers[:3])})")
        return None
    try:
        body = json.loads(path.read_text())
        if isinstance(body, dict) and body.get("format") not in READS:
            raise NotReady(f"index {directory} has format {body.get('format')!r}; this server reads formats {READS}")
        return Manifest.from_json(body)
    except (ValueError, UnicodeDecodeError, TypeError) as error:
        raise corrupt(path, f"cannot be read ({error})") from None


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Replace the committed manifest in one rename (the caller fsyncs the folder)."""
    write_atomic(directory / MANIFEST, manifest.to_json(), sync_dir=False)


def verify(directory: Path, manifest: Manifest) -> None:
    """Each data file of `manifest` is there and hashes to its recorded sha256 (`IndexCorrupt`)."""
    for name in manifest.files:
        path = directory / name
        if not path.is_file():
            raise corrupt(path, "is missing")
        if name in manifest.sha256 and file_sha256(path) != manifest.sha256[name]:
            raise corrupt(path, f"does not match the sha256 recorded in {MANIFEST}")


def fresh_name(kind: str, seq: int, extension: str, taken: Sequence[str]) -> str:
    """`<kind>-<seq>.<extension>`, or `<kind>-<seq>.<n>.<extension>` when `taken` holds it."""
    name, n = f"{kind}-{seq:012d}.{extension}", 0
    while name in taken:
        n += 1
        name = f"{kind}-{seq:012d}.{n}.{extension}"
    return name


def write_segment(
    directory: Path, rows: SegmentRows, seq: int, taken: Sequence[str], *, vectors_file: str | None = None
) -> tuple[Segment, dict[str, str]]:
    """Write a segment's files (temp, fsync, rename; not the folder); the segment and the files'
    sha256. `taken`: names never to reuse (the committed snapshot's). `vectors_file`: a file of
    the folder that holds the rows' vectors already (`write_vectors`); else `rows.vectors` are written."""
    vectors = vectors_file or fresh_name("vectors", seq, "npy", taken)
    items = fresh_name("items", seq, "json", taken)
    body = {
        "ids": rows.ids,
        "metadata": rows.metadata,
        "sources": rows.sources,
        "metadata_rules": METADATA_RULES,  # every row was checked under them; these rows break them:
        "withheld": sorted(rows.withheld or {}),
        "dead": rows.dead,
    }
    if vectors_file is None:
        if rows.vectors is None:
            raise ValueError("a segment to write needs its vectors")
        write_vectors(directory / vectors, [rows.vectors], rows.vectors.shape)
    elif len(map_vectors(directory / vectors)) != len(rows.ids):
        raise ValueError(f"{vectors} does not hold the segment's {len(rows.ids)} rows")
    write_atomic(directory / items, json.dumps(body, ensure_ascii=False).encode(), sync_dir=False)
    return Segment(vectors, items), {name: file_sha256(directory / name) for name in (vectors, items)}


def write_vectors(path: Path, chunks: Iterable[np.ndarray], shape: tuple[int, ...]) -> None:
    """Write float32 vectors of `shape` (N, D) as an .npy file at `path` (temp, fsync, rename; not
    the folder) from `chunks` of them, never all in memory. Plain writes, not a writable memory
    map: a full disk then fails the write (ENOSPC) instead of killing the process (SIGBUS)."""

    def save(tmp: Path) -> None:
        rows = 0
        with open(tmp, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)})
            for chunk in chunks:
                if chunk.shape[1:] != tuple(shape[1:]):
                    raise ValueError(f"a chunk of shape {chunk.shape} for vectors of shape {shape}")
                f.write(np.ascontiguousarray(chunk, dtype="<f4").data)
                rows += len(chunk)
        if rows != shape[0]:
            raise ValueError(f"{rows} rows written for vectors of shape {shape}")

    write_atomic(path, save, sync_dir=False)


def map_vectors(path: Path) -> np.ndarray:
    """The vectors of an .npy file as a read-only memory map (R, D): pages are read as they are used."""
    return np.load(path, allow_pickle=False, mmap_mode="r")


def write_graph(directory: Path, index: faiss.Index, seq: int, taken: Sequence[str]) -> tuple[str, str]:
    """Write an HNSW graph file; its name and sha256."""
    name = fresh_name("ann", seq, "faiss", taken)
    write_atomic(directory / name, lambda tmp: faiss.write_index(index, str(tmp)), sync_dir=False)
    return name, file_sha256(directory / name)


def write_snapshot(
    directory: Path, table: RowTable, committed: Manifest, seq: int, *, since: int | None, prepared: str | None = None
) -> Manifest:
    """Write `table` as the snapshot at `seq` and commit it (the manifest replaced; the folder
    fsynced before, not after). `since` None: every row as a new base segment (and the HNSW
    graph or trained index); `prepared`: the uncommitted file `compact` wrote their vectors to,
    committed as the base's instead of writing them again. Else the rows from `since` on, and
    the rows below it tombstoned since (`table.killed`), as one more delta over `committed`.
    On any failure the files it writes (and `prepared`) are removed — names no committed
    snapshot holds (`fresh_name`) — and `committed` stands."""
    taken = committed.files
    if prepared in taken:
        raise ValueError(f"{prepared} is committed already")
    try:
        if since is None:
            base, digests = _write_rows(directory, table, 0, seq, taken, prepared)
            segments: dict[str, Any] = {"base": base, "ann": None, "deltas": (), "sha256": digests}
            if table.kind != "flat":  # a graph, or a trained compressed index
                graph, digest = write_graph(directory, table.index, seq, taken)
                segments["ann"], digests[graph] = graph, digest
        else:
            delta, digests = _write_rows(directory, table, since, seq, taken)
            segments = {"deltas": (*committed.deltas, delta), "sha256": {**committed.sha256, **digests}}
        manifest = dataclasses.replace(
            committed,
            **segments,
            seq=seq,
            index_type=table.kind,
            size=len(table),
            written_at=time.time(),
            format=FORMAT,
        )
        fsync_dir(directory)
        write_manifest(directory, manifest)
    except BaseException:
        kinds = (("vectors", "npy"), ("items", "json"), ("ann", "faiss"))
        names = {fresh_name(kind, seq, extension, taken) for kind, extension in kinds} | {prepared or ""}
        for name in names - {""}:
            (directory / name).unlink(missing_ok=True)
        raise
    return manifest


def _write_rows(
    directory: Path, table: RowTable, start: int, seq: int, taken: Sequence[str], prepared: str | None = None
) -> tuple[Segment, dict[str, str]]:
    """Rows `start:` of `table` as a segment (a base when `start` is 0), with the rows below
    `start` tombstoned since; their vectors streamed from the table unless `prepared` holds them."""
    withheld = {row - start: problem for row, problem in table.problems.items() if row >= start}
    dead = sorted(row for row in table.killed if row < start)
    rows = SegmentRows(None, table.ids[start:], table.metadata[start:], table.sources[start:], withheld, dead)
    if prepared is None:
        prepared = fresh_name("vectors", seq, "npy", taken)
        write_vectors(directory / prepared, table.vectors.chunks(start), (len(rows.ids), table.dim))
    return write_segment(directory, rows, seq, taken, vectors_file=prepared)


def compact(directory: Path, table: RowTable, committed: Manifest, seq: int) -> tuple[RowTable, str | None]:
    """`table.compacted()`, a kind without flat storage keeping its live rows' floats in a new
    vectors file of the folder (written chunk by chunk, then memory-mapped): the new table, and
    that file's name for the full snapshot that follows to commit (`write_snapshot`'s
    `base_vectors`), or None. The file is removed if the compaction fails."""
    name = fresh_name("vectors", seq, "npy", committed.files)
    kept: list[str] = []

    def keep(chunks: Iterable[np.ndarray], rows: int) -> np.ndarray:
        kept.append(name)
        write_vectors(directory / name, chunks, (rows, table.dim))
        return map_vectors(directory / name)

    try:
        compacted = table.compacted(keep)
    except BaseException:
        if kept:
            (directory / name).unlink(missing_ok=True)
        raise
    return compacted, (name if kept else None)


def remove_unnamed(directory: Path, keep: set[str]) -> None:
    """Delete the data files of the folder not in `keep` (what a committed snapshot replaced, or
    an uncommitted one left), durably; a file a table still maps stays readable through its map."""
    for path in directory.iterdir():
        if path.is_file() and DATA_FILE.fullmatch(path.name) and path.name not in keep:
            path.unlink()
    fsync_dir(directory)


def read_segment(directory: Path, segment: Segment, dim: int, *, vectors: bool = True) -> SegmentRows:
    """A segment's rows (`IndexCorrupt` naming the file that cannot be read). Their vectors are
    the file's read-only memory map (pages read as they are used); `vectors=False` checks the
    vector file's shape without them (a graph holds the vectors)."""
    path = directory / segment.vectors
    try:
        array = map_vectors(path)  # (R, D)
        path = directory / segment.items
        body = json.loads(path.read_text())
        ids, metadata, sources = body["ids"], body["metadata"], body["sources"]
        dead = [int(row) for row in body.get("dead", [])]
        if array.shape != (len(ids), dim) or not len(ids) == len(metadata) == len(sources):
            raise ValueError(f"vectors of shape {array.shape} for {len(ids)} items")
        withheld = None  # rows of a segment written under these rules were checked then: only these break them
        if body.get("metadata_rules") == METADATA_RULES:
            withheld = {row: problem for row in body["withheld"] if (problem := metadata_problem(metadata[row]))}
        floats = array if array.dtype == np.float32 else np.asarray(array, dtype=np.float32)  # another byte order: read
        return SegmentRows(floats if vectors else None, ids, metadata, sources, withheld, dead)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise corrupt(path, f"cannot be read ({type(error).__name__}: {error})") from None


def read_graph(directory: Path, name: str) -> faiss.Index:
    path = directory / name
    try:
        return faiss.read_index(str(path))
    except RuntimeError as error:
        raise corrupt(path, f"cannot be read ({error})") from None


def load_table(directory: Path, manifest: Manifest, dim: int, params: ann.AnnParams) -> tuple[RowTable, int]:
    """The manifest's segments, each file checked against its recorded sha256, as a new table;
    with the number of rows of its base segment. `IndexCorrupt` for a file that does not fit."""
    verify(directory, manifest)
    graph = read_graph(directory, manifest.ann) if manifest.ann else None
    table, base_rows = RowTable(dim, params, graph), 0
    for i, segment in enumerate(manifest.segments):
        indexed = graph is not None and i == 0  # the graph holds the base's rows
        rows = read_segment(directory, segment, dim, vectors=not (indexed and table.holds_vectors))
        try:
            table.kill(rows.dead)
            table.append(rows.vectors, rows.ids, rows.metadata, rows.sources, rows.withheld, indexed=indexed)
        except (ValueError, IndexError) as error:
            raise corrupt(directory / segment.items, f"does not fit the index ({error})") from None
        if i == 0:
            base_rows = len(table.ids)
    table.killed.clear()
    return table, base_rows
