"""The FAISS part of the store: which index a collection of a given size gets, and its search.

Every vector is L2-normalized float32, so inner product = cosine similarity.

- Up to `exact_max` live items (default 50,000): `IndexFlatIP`, exact. A 50k × 512 scan is a
  few milliseconds on one core, and exact answers need no tuning.
- Beyond: `IndexHNSWFlat` (inner product). M = 32 links per node (64 on the base layer) and
  efConstruction = 80 at build; efSearch grows with the size (`ef_search_for`: 64 at 50k, 90 at
  100k, 286 at 1M), because the graph must be walked wider to keep recall as it grows.
  `bench/search.py` measures recall@10 against exact search. On its random 512-d unit vectors —
  the worst case for HNSW, where the true neighbours are barely nearer than everything else —
  recall is poor (100k: 0.13 / 0.22 / 0.37 / 0.57 / 0.78 at efSearch 64 / 128 / 256 / 512 /
  1024; 3k: 0.97 at 128), so on such data exact search is the better choice: raise
  `exact_max` (PCCLIP_INDEX_EXACT_MAX). Real embeddings lie near a low-dimensional manifold and
  need far smaller beams; measure them with `bench/search.py --vectors embeddings.npy`.

HNSW cannot remove vectors, so the store never removes from either kind: deleted and replaced
rows are tombstoned, skipped by over-fetching, and dropped when the snapshot compacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np

Kind = Literal["flat", "hnsw"]


@dataclass(frozen=True)
class AnnParams:
    exact_max: int = 200_000  # live items up to which search is exact (IndexFlatIP)
    hnsw_m: int = 32  # graph degree (2·M on the base layer)
    ef_construction: int = 80  # build-time beam width
    ef_search_min: int = 128  # search-time beam width at exact_max, doubled per 4× more items
    ef_search_max: int = 512
    ef_search: int | None = None  # fixed efSearch (PCCLIP_INDEX_EF_SEARCH); None = by size

    def kind_for(self, live: int) -> Kind:
        return "flat" if live <= self.exact_max else "hnsw"

    def ef_search_for(self, rows: int) -> int:
        """efSearch for an HNSW over `rows` vectors: ef_search_min at exact_max, ×2 per ×4 rows."""
        if self.ef_search is not None:
            return self.ef_search
        ratio = max(rows / max(self.exact_max, 1), 1.0)
        ef = self.ef_search_min * ratio**0.5
        return int(min(max(ef, self.ef_search_min), self.ef_search_max))


def new_index(kind: Kind, dim: int, params: AnnParams) -> faiss.Index:
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params.ef_construction
    return index


def kind_of(index: faiss.Index) -> Kind:
    return "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat"


def search(index: faiss.Index, query: np.ndarray, k: int, params: AnnParams) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` rows of `index` for one query.  (D,) -> scores (k,), rows (k,) (-1 = none)."""
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    k = max(1, min(k, index.ntotal))
    if kind_of(index) == "hnsw":
        # Per-call parameters: concurrent searches never share a mutable efSearch.
        ef = max(params.ef_search_for(index.ntotal), k)
        scores, rows = index.search(q, k, params=faiss.SearchParametersHNSW(efSearch=ef))
    else:
        scores, rows = index.search(q, k)
    return scores[0], rows[0]
