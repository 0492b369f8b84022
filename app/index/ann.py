"""The FAISS part of the store: which index a collection of a given size gets, and its search.

Every vector is L2-normalized float32, so inner product = cosine similarity. The kind follows
the live row count (`AnnParams.kind_for`), or `PCCLIP_INDEX_KIND` when that is not `auto`:

- `flat` — up to `exact_max` live items (default 200,000): `IndexFlatIP`, exact, no tuning.
- `hnsw` — up to `compressed_min` (default 2,000,000): `IndexHNSWFlat`, M = 32 links per node
  (64 on the base layer), efConstruction = 80; efSearch grows with the size (`ef_search_for`:
  128 up to 200k, ×2 per ×4 rows, so 181 at 400k and 286 at 1M, at most 512). It keeps the
  raw float32 vectors plus the graph: 384-d at 1M is about 1.7 GB.
- `ivf-sq8` — beyond: the compressed index, `IVF{nlist},SQ8`: an inverted file over `nlist` ≈
  √rows k-means lists (a power of two, at most `nlist_max` = 4096: the coarse assignment of every
  added row costs nlist·D multiply-adds; a 10M × 384-d build took 406 s on 2 cores against 287 s
  with 1024 lists, and nprobe 16 of 4096 lists scans a quarter of the rows) holding 8-bit
  scalar-quantized vectors (D bytes each); `nprobe` lists are scanned per query. 384-d at 10M:
  about 3.9 GB instead of 15 GB of float32.
- `ivf-pq` — by setting only: `IVF{nlist},PQ{D/4}x4fs,Refine(SQ8)`, lists of 4-bit fast-scan
  product-quantization codes (D/8 bytes a vector), the best `refine_k_factor`·k candidates
  re-ranked with an SQ8 copy of every vector (D bytes). Cheaper to scan, but on embeddings whose
  neighbours lie close together the 4-bit codes rank poorly: on the 1M tiny-mix set recall@10
  was 0.61 / 0.80 / 0.92 with k_factor 16 / 64 / 256 (nprobe 16), against ivf-sq8's 0.96.

The store keeps a compressed kind's float rows beside its codes, memory-mapped from the
snapshot's files rather than in memory (`app.index.vectors`), and `search` re-scores the best
`rerank_k_factor`·k candidates exactly from them (PCCLIP_INDEX_RERANK): scores are exact cosines.

The compressed kinds must be trained: `build_index` trains them on a sample of
`train_max` rows (random, seeded) of the rows being indexed, each time the store rebuilds its
index (at compaction: when the kind changes, tombstones pile up, or the rows have grown 4×
past what its lists were trained for, `lists_outgrown`), then adds every row; rows added
later are encoded with that training. Below `train_min` rows a compressed kind
falls back to `flat`. `bench/search.py` measures every kind (recall@10 against exact search,
latency, memory, build time); the README's performance section holds the figures.

HNSW cannot remove vectors, so the store never removes from any kind: deleted and replaced
rows are tombstoned, skipped by over-fetching, and dropped when the snapshot compacts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import faiss
import numpy as np

if TYPE_CHECKING:
    from app.settings import Settings

Kind = Literal["flat", "hnsw", "ivf-sq8", "ivf-pq"]
KINDS: tuple[str, ...] = ("flat", "hnsw", "ivf-sq8", "ivf-pq")  # what PCCLIP_INDEX_KIND takes, besides "auto"
COMPRESSED: tuple[str, ...] = ("ivf-sq8", "ivf-pq")


class FloatRows(Protocol):
    """Float vectors by row number: an (N, D) array, a memory map, or a row table's vectors."""

    def __len__(self) -> int: ...

    def __getitem__(self, rows: np.ndarray) -> np.ndarray: ...  # (R,) -> (R, D)


@dataclass(frozen=True)
class AnnParams:
    exact_max: int = 200_000  # live items up to which search is exact (IndexFlatIP)
    compressed_min: int = 2_000_000  # live items from which `auto` picks the compressed kind
    kind: str = "auto"  # "auto" (by size) or one of KINDS (PCCLIP_INDEX_KIND)
    hnsw_m: int = 32  # graph degree (2·M on the base layer)
    ef_construction: int = 80  # build-time beam width
    ef_search_min: int = 128  # search-time beam width at exact_max, doubled per 4× more items
    ef_search_max: int = 512
    ef_search: int | None = None  # fixed efSearch (PCCLIP_INDEX_EF_SEARCH); None = by size
    nlist_max: int = 4096  # most inverted lists of an IVF kind (build cost grows with it)
    nprobe: int = 16  # IVF lists scanned per query (PCCLIP_INDEX_NPROBE); 1M recall: 0.96 by codes, 0.98 re-ranked
    refine_k_factor: int = 256  # ivf-pq: candidates re-ranked with SQ8 = k_factor · k
    rerank_k_factor: int = 4  # compressed kinds with float rows at hand: candidates re-scored exactly = factor · k
    train_min: int = 10_000  # fewer live rows: a compressed kind falls back to flat
    train_max: int = 131_072  # rows sampled to train a compressed kind
    kmeans_iterations: int = 10

    def __post_init__(self) -> None:
        if self.kind != "auto" and self.kind not in KINDS:
            raise ValueError(f"unknown index kind {self.kind!r}; valid kinds: auto, {', '.join(KINDS)}")

    @classmethod
    def from_settings(cls, settings: Settings) -> AnnParams:
        """The parameters `app.settings.Settings` sets (PCCLIP_INDEX_*); the rest at their defaults."""
        return cls(
            exact_max=settings.index_exact_max,
            ef_search=settings.index_ef_search,
            kind=settings.index_kind,
            nprobe=settings.index_nprobe,
            rerank_k_factor=settings.index_rerank,
        )

    def kind_for(self, live: int) -> Kind:
        if self.kind == "auto":
            if live <= self.exact_max:
                return "flat"
            return "hnsw" if live < self.compressed_min else "ivf-sq8"
        if self.kind in COMPRESSED and live < self.train_min:
            return "flat"
        return self.kind  # type: ignore[return-value]

    def ef_search_for(self, rows: int) -> int:
        """efSearch for an HNSW over `rows` vectors: ef_search_min at exact_max, ×2 per ×4 rows."""
        if self.ef_search is not None:
            return self.ef_search
        ratio = max(rows / max(self.exact_max, 1), 1.0)
        ef = self.ef_search_min * ratio**0.5
        return int(min(max(ef, self.ef_search_min), self.ef_search_max))

    def nlist_for(self, rows: int) -> int:
        """Inverted lists for `rows` vectors: the power of two nearest √rows, in [1, nlist_max]."""
        return int(min(2 ** round(math.log2(max(math.sqrt(rows), 1))), self.nlist_max))


def factory_string(kind: Kind, dim: int, rows: int, params: AnnParams) -> str:
    """The `faiss.index_factory` description of a compressed kind for `rows` vectors."""
    nlist = params.nlist_for(rows)
    if kind == "ivf-sq8":
        return f"IVF{nlist},SQ8"
    if kind == "ivf-pq":
        return f"IVF{nlist},PQ{_pq_m(dim)}x4fs,Refine(SQ8)"
    raise ValueError(f"{kind!r} is not a compressed kind ({', '.join(COMPRESSED)})")


def new_index(kind: Kind, dim: int, params: AnnParams, rows: int = 0) -> faiss.Index:
    """An empty index of `kind`; a compressed one is sized for `rows` and still untrained."""
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = params.ef_construction
        return hnsw
    index = faiss.index_factory(dim, factory_string(kind, dim, rows, params), faiss.METRIC_INNER_PRODUCT)
    faiss.extract_index_ivf(index).cp.niter = params.kmeans_iterations
    return index


def sample_rows(n: int, params: AnnParams, seed: int = 0) -> np.ndarray:
    """At most `train_max` of the row numbers 0..n-1, drawn without replacement, in order."""
    if n <= params.train_max:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, params.train_max, replace=False))


def train_sample(vectors: FloatRows, params: AnnParams, seed: int = 0) -> np.ndarray:
    """At most `train_max` rows of `vectors` (N, D) (`sample_rows`): (≤ train_max, D)."""
    return np.ascontiguousarray(vectors[sample_rows(len(vectors), params, seed)], dtype=np.float32)


def train(index: faiss.Index, vectors: FloatRows, params: AnnParams) -> None:
    """Train `index` (if it needs it) on a sample of `vectors` (N, D)."""
    if not index.is_trained:
        index.train(train_sample(vectors, params))


def build_index(kind: Kind, vectors: np.ndarray, params: AnnParams) -> faiss.Index:
    """An index of `kind` holding `vectors` (N, D) in row order, trained on a sample of them."""
    index = new_index(kind, vectors.shape[1], params, rows=len(vectors))
    if len(vectors):
        train(index, vectors, params)
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def kind_of(index: faiss.Index) -> Kind:
    if isinstance(index, faiss.IndexRefine):
        return "ivf-pq"
    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        return "ivf-sq8"
    return "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat"


def lists_outgrown(index: faiss.Index, rows: int, params: AnnParams) -> bool:
    """Whether an IVF index's lists were trained for far fewer rows than `rows`: the nlist that
    many call for is at least twice its own (4× the rows). A store that grows retrains it then,
    so its lists stay ~√rows long; rebuilds 4× apart cost at most a third more than one build."""
    if kind_of(index) not in COMPRESSED:
        return False
    return params.nlist_for(rows) >= 2 * faiss.extract_index_ivf(index).nlist


def search_parameters(index: faiss.Index, k: int, params: AnnParams) -> faiss.SearchParameters | None:
    """Per-call parameters (concurrent searches never share a mutable efSearch or nprobe)."""
    # Fields are set by assignment, which is what faiss's keyword constructors do at runtime (its
    # stub declares them without keywords); faiss's __setattr__ keeps `base_index_params` alive.
    kind = kind_of(index)
    if kind == "hnsw":
        # faiss 1.15's __init__.pyi omits SearchParametersHNSW, which the module does export.
        hnsw = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        hnsw.efSearch = max(params.ef_search_for(index.ntotal), k)
        return hnsw
    if kind in ("ivf-sq8", "ivf-pq"):
        ivf = faiss.SearchParametersIVF()
        ivf.nprobe = params.nprobe
        if kind == "ivf-sq8":
            return ivf
        refine = faiss.IndexRefineSearchParameters()
        refine.k_factor = params.refine_k_factor
        refine.base_index_params = ivf
        return refine
    return None


def search(
    index: faiss.Index, query: np.ndarray, k: int, params: AnnParams, vectors: FloatRows | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` rows of `index` for one query.  (D,) -> scores (k,), rows (k,) (-1 = none).

    `vectors` (ntotal, D), the rows' float vectors (a memory map will do): a compressed kind
    then fetches `rerank_k_factor`·k candidates by its codes and returns the best `k` by their
    exact scores (`rerank`), so quantization error neither drops true neighbours nor skews scores."""
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    k = max(1, min(k, index.ntotal))
    if vectors is None or kind_of(index) not in COMPRESSED:
        scores, rows = index.search(q, k, params=search_parameters(index, k, params))
        return scores[0], rows[0]
    fetch = max(1, min(k * params.rerank_k_factor, index.ntotal))
    _, candidates = index.search(q, fetch, params=search_parameters(index, fetch, params))
    return rerank(q[0], candidates[0], vectors, k)


def rerank(query: np.ndarray, rows: np.ndarray, vectors: FloatRows, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best `k` of candidate `rows` (-1 = none) by exact inner product with `query` (D,)
    against `vectors` (N, D), best first (ties by row); padded with -1 / -inf like FAISS."""
    found = np.unique(rows[rows >= 0])  # sorted: a memory map is read in file order
    exact = np.asarray(vectors[found], dtype=np.float32) @ query if len(found) else np.zeros(0, np.float32)
    order = np.lexsort((found, -exact))[:k]
    scores = np.full(k, -np.inf, dtype=np.float32)
    best = np.full(k, -1, dtype=np.int64)
    scores[: len(order)], best[: len(order)] = exact[order], found[order]
    return scores, best


def _pq_m(dim: int) -> int:
    """Sub-quantizers of the PQ codes: the largest divisor of `dim` up to dim / 4 (2 bytes per 4 dims)."""
    return next(m for m in range(max(dim // 4, 1), 0, -1) if dim % m == 0)
