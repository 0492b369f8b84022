"""The row table: what a FAISS index folder holds in memory, and exact / approximate search over it.

Row r holds one put: its vector, id, metadata and source. `ids[r]` becomes None once the item
is deleted or replaced — a tombstone, skipped by searches and dropped by `compacted` (HNSW
cannot remove vectors; see `app.index.ann`). Metadata values are indexed in postings for
equality filters. Rows whose stored metadata breaks the rules (written before they were
enforced) are served as {} with the problem and are in no posting; replacing them clears it.

Vectors are held once (`app.index.vectors`): where the FAISS index stores them uncompressed
(flat, HNSW-flat) the table reads them through that storage; for a compressed kind it keeps the
float rows beside the codes — the snapshot segments' files memory-mapped, the rows added since in
memory — and re-scores the index's candidates exactly from them (`ann.search`'s re-ranking).

No I/O and no lock: `IndexStore` serializes writers and holds the write side of its
readers–writer lock around every change, the read side around every read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

import faiss
import numpy as np

from app.index import ann
from app.index.backend import Hit, Item
from app.index.metadata import metadata_problem
from app.index.vectors import CHUNK_ROWS, MappedVectors, StorageVectors, Vectors
from app.index.wal import Record

EXACT_FILTER_MAX = 20_000  # a filter matching at most this many items is searched exactly
COMPACT_DEAD_FRACTION = 0.2
Matches = Callable[[Mapping[str, Any]], bool]  # a predicate over an item's (served) metadata
# Where a compacted table without flat storage keeps its live rows' floats: given them in chunks
# and their number, returns a read-only (L, D) array of them (the store: a new segment file, mapped).
Keep = Callable[[Iterator[np.ndarray], int], np.ndarray]


def posting_key(key: str, value: Any) -> tuple[str, str]:
    """The postings key of `metadata[key] == value`: numbers by value (1.0 and 1 are one key, as
    `app.index.filters` compares them), booleans apart from numbers, other values as JSON."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return key, json.dumps(value, sort_keys=True, ensure_ascii=False)


class RowTable:
    """Rows over one FAISS index of `dim`-sized unit vectors (see the module docstring)."""

    def __init__(self, dim: int, params: ann.AnnParams, index: faiss.Index | None = None) -> None:
        self.dim, self.params = dim, params
        self.index = index if index is not None else ann.new_index("flat", dim, params)
        self.ids: list[str | None] = []
        self.metadata: list[dict[str, Any]] = []
        self.sources: list[str | None] = []
        self.row: dict[str, int] = {}  # live id -> row
        self.problems: dict[int, str] = {}  # row -> why its metadata is withheld
        self.killed: list[int] = []  # rows tombstoned since the caller last cleared it (snapshot deltas)
        self._postings: dict[tuple[str, str], set[int]] = {}
        storage = _flat_storage(self.index)
        # (ntotal, D): row r's vector, gathered as `vectors[rows]`
        self.vectors: Vectors = StorageVectors(storage, dim) if storage is not None else MappedVectors(dim)

    # --- writes ----------------------------------------------------------------------------

    def append(
        self,
        vectors: np.ndarray | None,
        ids: Sequence[str | None],
        metadata: Sequence[Any],
        sources: Sequence[str | None],
        withheld: Mapping[int, str] | None = None,
        indexed: bool = False,
    ) -> None:
        """Append rows (a snapshot segment). `indexed`: the index already holds them (a loaded
        graph or trained index); `vectors` (R, D) are then None when it keeps them as floats
        (`holds_vectors`), else they go to the table's own rows only — a read-only array (the
        segment file's memory map) by reference (`MappedVectors.append`). `withheld`: the rows
        (0-based in these) known to break the metadata rules, with the problem, every other row
        known to keep them; None: check each.
        `ValueError` for rows that do not fit (a damaged snapshot: the caller discards the table)."""
        start = len(self.ids)
        if vectors is not None:
            self._add_vectors(np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim), to_index=not indexed)
        if self.index.ntotal != start + len(ids):
            raise ValueError(f"{self.index.ntotal} vectors in the index for {start + len(ids)} rows")
        self.ids.extend(ids)
        self.metadata.extend(metadata)
        self.sources.extend(sources)
        for row, item_id in enumerate(ids, start):
            if item_id is None:
                continue
            if item_id in self.row:
                raise ValueError(f"id {item_id!r} in rows {self.row[item_id]} and {row}")
            self.row[item_id] = row
            if withheld is None:
                self._take_metadata(row, self.metadata[row])
            elif row - start in withheld:
                self.problems[row] = withheld[row - start]
            else:
                self._post(row, self.metadata[row])

    def kill(self, rows: Iterable[int]) -> None:
        """Tombstone these live rows (a snapshot delta's deletions)."""
        for row in rows:
            item_id = self.ids[row] if 0 <= row < len(self.ids) else None
            if item_id is None:
                raise ValueError(f"row {row} is not a live row")
            del self.row[item_id]
            self._tombstone(row)

    def apply(self, records: Sequence[Record], checked: bool = False) -> None:
        """The effect of log records, in order. `checked`: their metadata is known to keep the
        rules (a live write); a replayed record's is checked here (it may predate them)."""
        vectors = []
        for record in records:
            old = self.row.pop(record.id, None)
            if old is not None:
                self._tombstone(old)
            if record.op == "put":
                if record.vector is None or record.vector.shape != (self.dim,):
                    raise ValueError(f"record {record.seq}: no embedding of size {self.dim}")
                row = len(self.ids)
                self.ids.append(record.id)
                self.metadata.append(record.metadata or {})
                self.sources.append(record.source)
                self.row[record.id] = row
                if checked:
                    self._post(row, self.metadata[row])
                else:
                    self._take_metadata(row, self.metadata[row])
                vectors.append(record.vector)
        if vectors:
            self._add_vectors(np.stack(vectors).astype(np.float32))

    def compacted(self, keep: Keep | None = None) -> RowTable:
        """A new table of the live rows alone, over a new index of the kind their number calls
        for (built beside this one: the caller swaps it in while this one keeps serving).

        The live rows are read and added to the new index chunk by chunk, never all at once; a
        kind without flat storage keeps their floats where `keep` puts them (None: in memory)."""
        live = np.array(sorted(self.row.values()), dtype=np.int64)
        index = ann.new_index(self.params.kind_for(len(live)), self.dim, self.params, rows=len(live))
        if len(live) and not index.is_trained:  # a compressed kind learns its codes from a sample
            index.train(self.vectors[live[ann.sample_rows(len(live), self.params)]])
        table = RowTable(self.dim, self.params, index)
        chunks = self._added_chunks(live, index)
        vectors = None
        if table.holds_vectors:
            for _ in chunks:  # the index keeps them
                pass
        elif keep is not None:
            vectors = keep(chunks, len(live))
        else:
            vectors = np.concatenate([np.zeros((0, self.dim), dtype=np.float32), *chunks])
        table.append(
            vectors,
            [self.ids[r] for r in live],
            [self.metadata[r] for r in live],
            [self.sources[r] for r in live],
            {new: self.problems[old] for new, old in enumerate(live.tolist()) if old in self.problems},
            indexed=True,
        )
        return table

    def _added_chunks(self, rows: np.ndarray, index: faiss.Index) -> Iterator[np.ndarray]:
        """The vectors of `rows` (L,) in (≤ CHUNK_ROWS, D) chunks, each added to `index` as it is read."""
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = self.vectors[rows[start : start + CHUNK_ROWS]]
            index.add(chunk)
            yield chunk

    @property
    def holds_vectors(self) -> bool:
        """Whether the index keeps the rows' float vectors itself (flat, HNSW-flat)."""
        return isinstance(self.vectors, StorageVectors)

    def _add_vectors(self, vectors: np.ndarray, to_index: bool = True) -> None:
        """Add (R, D) vectors to the index (unless it holds them already) and, without flat
        storage, to the table's own rows."""
        if to_index:
            self.index.add(vectors)
        if isinstance(self.vectors, MappedVectors):
            self.vectors.append(vectors)

    def _tombstone(self, row: int) -> None:
        self._unpost(row, self.metadata[row])
        self.ids[row] = None
        self.killed.append(row)

    def _take_metadata(self, row: int, metadata: Any) -> None:
        """Index a row's metadata for filters, or withhold it when it breaks the rules."""
        problem = metadata_problem(metadata)
        if problem is not None:
            self.problems[row] = problem
        else:
            self._post(row, metadata)

    def _post(self, row: int, metadata: Mapping[str, Any]) -> None:
        for key, value in metadata.items():
            self._postings.setdefault(posting_key(key, value), set()).add(row)

    def _unpost(self, row: int, metadata: Any) -> None:
        if self.problems.pop(row, None) is not None:
            return
        for key, value in metadata.items():
            rows = self._postings.get(posting_key(key, value))
            if rows is not None:
                rows.discard(row)
                if not rows:
                    del self._postings[posting_key(key, value)]

    # --- reads -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.row)

    @property
    def kind(self) -> ann.Kind:
        return ann.kind_of(self.index)

    @property
    def dead(self) -> int:
        return len(self.ids) - len(self.row)

    def needs_compaction(self) -> bool:
        live = len(self.row)
        rebuild = self.kind != self.params.kind_for(live) or ann.lists_outgrown(self.index, live, self.params)
        return rebuild or (self.dead > 0 and self.dead >= COMPACT_DEAD_FRACTION * len(self.ids))

    def served_metadata(self, row: int) -> dict[str, Any]:
        """A row's metadata as served: {} when withheld (it breaks the rules)."""
        return {} if row in self.problems else self.metadata[row]

    def item(self, row: int) -> Item:
        """The live row as served: withheld metadata as {} with its problem."""
        item_id, vector = self.ids[row], self.vectors[[row]][0]
        return Item(item_id, self.served_metadata(row), self.sources[row], vector, self.problems.get(row))  # type: ignore[arg-type]

    def search(
        self,
        q: np.ndarray,
        k: int,
        *,
        equal: Mapping[str, Any] | None = None,
        matches: Matches | None = None,
        exclude: Collection[str] = (),
        min_score: float | None = None,
    ) -> list[Hit]:
        """The `k` live rows most similar to the unit vector `q` (D,), best first, scoring at
        least `min_score`.

        Candidates: rows whose metadata has each `equal` key with exactly that value (from the
        postings), then those whose served metadata `matches`; never the `exclude` ids. Small
        candidate sets are scanned exactly; otherwise the ANN index is asked for more than `k`
        (growing) until `k` rows pass.
        """
        excluded = {self.row[i] for i in exclude if i in self.row}
        allowed = self._posted_rows(equal) - excluded if equal else None
        if allowed is not None and len(allowed) <= EXACT_FILTER_MAX:
            rows = sorted(allowed)
            if matches is not None:
                rows = [row for row in rows if matches(self.served_metadata(row))]
            return self._exact(q, k, rows, min_score)
        return self._approximate(q, k, allowed, excluded, matches, min_score)

    def _posted_rows(self, equal: Mapping[str, Any]) -> set[int]:
        sets = sorted((self._postings.get(posting_key(key, value), set()) for key, value in equal.items()), key=len)
        return set.intersection(*map(set, sets))

    def _exact(self, q: np.ndarray, k: int, rows: list[int], min_score: float | None) -> list[Hit]:
        if not rows:
            return []
        scores = self.vectors[rows] @ q  # (R,) exact, from the float rows
        top = np.argsort(-scores, kind="stable")[:k]
        hits = self._hits([(rows[i], float(scores[i])) for i in top])
        return hits if min_score is None else [hit for hit in hits if hit.score >= min_score]

    def _approximate(
        self,
        q: np.ndarray,
        k: int,
        allowed: set[int] | None,
        excluded: set[int],
        matches: Matches | None,
        min_score: float | None,
    ) -> list[Hit]:
        total = self.index.ntotal
        live = len(self.row) - len(excluded)
        if live <= 0 or total == 0:
            return []
        # Expected share of rows that pass: live, not excluded, in the filter.
        passing = len(allowed) if allowed is not None else live
        fetch = min(total, math.ceil(k * total / max(passing, 1) * 1.2) + len(excluded) + 8)
        while True:
            # A compressed kind re-scores its candidates from the float rows: scores are exact
            # cosines, so they come best first and the `min_score` cut below holds for it too.
            scores, rows = ann.search(self.index, q, fetch, self.params, vectors=self.vectors)
            chosen: list[tuple[int, float]] = []
            for score, row in zip(scores.tolist(), rows.tolist(), strict=True):
                if min_score is not None and score < min_score:
                    return self._hits(chosen)  # best first: every later row scores lower still
                if row < 0 or self.ids[row] is None or row in excluded:
                    continue
                if (allowed is not None and row not in allowed) or (
                    matches is not None and not matches(self.served_metadata(row))
                ):
                    continue
                chosen.append((row, score))
                if len(chosen) == k:
                    return self._hits(chosen)
            if fetch >= total:
                return self._hits(chosen)
            fetch = min(total, fetch * 4)

    def _hits(self, chosen: Sequence[tuple[int, float]]) -> list[Hit]:
        """Hits of (row, score) pairs, in order; their vectors gathered in one read."""
        vectors = self.vectors[[row for row, _ in chosen]]
        return [
            Hit(self.ids[row], score, self.served_metadata(row), vector, self.problems.get(row))  # type: ignore[arg-type]
            for (row, score), vector in zip(chosen, vectors, strict=True)
        ]


def _flat_storage(index: faiss.Index) -> faiss.IndexFlat | None:
    """The uncompressed float32 storage of `index` (itself when flat, HNSW-flat's `storage`), or None."""
    if isinstance(index, faiss.IndexFlat):
        return index
    storage = getattr(index, "storage", None)
    if storage is not None:
        storage = faiss.downcast_index(storage)
        if isinstance(storage, faiss.IndexFlat):
            return storage
    return None
