"""Where a row table's float32 vectors live: one small interface, two homes.

- `StorageVectors` — the flat and HNSW-flat kinds: a view of the FAISS index's own float32
  storage (the vectors are held once; the view is taken afresh at each read, as FAISS moves its
  storage when it grows).
- `MappedVectors` — the compressed kinds, whose index keeps only codes: the rows of committed
  snapshot segments as read-only memory maps of their `vectors-<S>.npy` files (the kernel pages
  them in and out; they are not anonymous memory), then the rows added since, in memory (the
  tail). After a snapshot commits, the store points the rows it wrote at the new file (`settle`),
  so the tail holds at most a snapshot's worth of writes.

Both give `len`, row gathers (`vectors[rows]`, always a copy: nothing a caller keeps refers to a
map) and chunked reads from a row on (`chunks`: snapshot writes, compaction).

A mapped file never changes: data files are written under a temp name and renamed into place,
and never rewritten under a name a map was opened from (`snapshot.fresh_name`), so a map always
reads the bytes its file was committed with. A file unlinked while mapped (an older snapshot's,
garbage-collected, or the old folder a rebuild swaps out) stays readable through the map on
Linux until the last map of it is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import faiss
import numpy as np

CHUNK_ROWS = 65_536  # rows a chunked read yields at a time (96 MiB of 384-d floats)
Rows = Sequence[int] | np.ndarray  # row numbers to gather


class StorageVectors:
    """Rows read through the uncompressed storage of a FAISS index (flat, or HNSW-flat's)."""

    def __init__(self, storage: faiss.IndexFlat, dim: int) -> None:
        self._storage, self.dim = storage, dim

    def __len__(self) -> int:
        return int(self._storage.ntotal)

    def __getitem__(self, rows: Rows) -> np.ndarray:
        """(R,) row numbers -> (R, D), a copy."""
        return self.view()[np.asarray(rows, dtype=np.int64)]

    def view(self) -> np.ndarray:
        """(N, D): FAISS's storage itself, valid until the next add."""
        n = len(self)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return faiss.rev_swig_ptr(self._storage.get_xb(), n * self.dim).reshape(n, self.dim)

    def chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        """Rows `start:` in (≤ CHUNK_ROWS, D) views."""
        view = self.view()
        for at in range(start, len(view), CHUNK_ROWS):
            yield view[at : at + CHUNK_ROWS]


class MappedVectors:
    """Read-only parts (segment files' memory maps, or rows frozen in memory), then a growing tail."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._parts: list[np.ndarray] = []  # each (R_i, D), never written
        self._ends: list[int] = []  # rows up to the end of each part
        self._frozen: list[bool] = []  # whether each part is rows in memory rather than a map
        self._tail = np.zeros((0, dim), dtype=np.float32)  # its first `_tail_rows` rows are in use
        self._tail_rows = 0

    def __len__(self) -> int:
        return self._parted + self._tail_rows

    @property
    def _parted(self) -> int:
        return self._ends[-1] if self._ends else 0

    @property
    def in_memory(self) -> int:
        """Rows held in memory (anonymous), not in a mapped file."""
        return self._tail_rows + sum(len(p) for p, frozen in zip(self._parts, self._frozen, strict=True) if frozen)

    def __getitem__(self, rows: Rows) -> np.ndarray:
        """(R,) row numbers -> (R, D), a copy (`IndexError` for a row out of range)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows out of range 0..{len(self) - 1}")
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        begin = 0
        for part, end in zip((*self._parts, self._tail), (*self._ends, len(self)), strict=True):
            here = (rows >= begin) & (rows < end)
            if here.any():
                out[here] = part[rows[here] - begin]
            begin = end
        return out

    def chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        """Rows `start:` in (≤ CHUNK_ROWS, D) views (of a map: read as they are consumed)."""
        begin = 0
        for part, end in zip((*self._parts, self._tail), (*self._ends, len(self)), strict=True):
            for at in range(max(start, begin), end, CHUNK_ROWS):
                yield part[at - begin : min(at + CHUNK_ROWS, end) - begin]
            begin = end

    def append(self, vectors: np.ndarray) -> None:
        """Add (R, D) rows: a read-only array (a segment file's memory map) is kept as it is, as
        a part after the rows so far; any other is copied into the tail."""
        if not vectors.flags.writeable:
            self._freeze_tail(self._tail_rows)
            self._add_part(vectors, frozen=False)
            return
        n, need = self._tail_rows, self._tail_rows + len(vectors)
        if need > len(self._tail):
            grown = np.zeros((max(16, 2 * need), self.dim), dtype=np.float32)
            grown[:n] = self._tail[:n]
            self._tail = grown
        self._tail[n:need] = vectors
        self._tail_rows = need

    def settle(self, start: int, mapped: np.ndarray) -> None:
        """Serve rows `start:` from `mapped` (R, D), the memory map of the file just written from
        them (a snapshot's); `start` is 0, where a part ends, or in the tail (whose rows before
        it then stay in memory: a delta after a snapshot that was not settled)."""
        if len(mapped) != len(self) - start or not (start == 0 or start in self._ends or start > self._parted):
            raise ValueError(f"{len(mapped)} mapped rows cannot stand for rows {start}..{len(self)}")
        if start > self._parted:
            self._freeze_tail(start - self._parted)
        keep = 0 if start == 0 else self._ends.index(start) + 1
        self._parts, self._ends, self._frozen = self._parts[:keep], self._ends[:keep], self._frozen[:keep]
        self._tail, self._tail_rows = np.zeros((0, self.dim), dtype=np.float32), 0
        self._add_part(mapped, frozen=False)

    def _freeze_tail(self, rows: int) -> None:
        """The tail's first `rows` rows become a part (read-only from now on); a new tail follows."""
        if rows:
            frozen = self._tail[:rows]
            frozen.flags.writeable = False
            self._add_part(frozen, frozen=True)
        self._tail, self._tail_rows = np.zeros((0, self.dim), dtype=np.float32), 0

    def _add_part(self, part: np.ndarray, *, frozen: bool) -> None:
        if part.shape[1:] != (self.dim,) or part.dtype != np.float32:
            raise ValueError(f"vectors of shape {part.shape} and type {part.dtype} for rows of size {self.dim}")
        self._parts.append(part)
        self._ends.append(self._parted + len(part))
        self._frozen.append(frozen)


Vectors = StorageVectors | MappedVectors
