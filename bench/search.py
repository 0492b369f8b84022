"""Search benchmark of the index store's FAISS choice: one JSON line of figures.

    python bench/search.py --n 100000            # the index the store would build for N items
    python bench/search.py --n 1000000 --ef-search 64,128,256,512

Data and queries are random unit vectors in `--dim` (512) dimensions — the hardest case for
graph indexes (no low-dimensional structure; nearest neighbours are barely nearer than the
rest). Ground truth is exact inner-product search (IndexFlatIP).

Figures: `p50_ms` / `p99_ms` — latency of single queries sent one at a time (as the server
sends them); `qps` — queries per second of the same one-at-a-time loop; `recall_at_10` —
share of the exact top 10 found in the approximate top 10; `exact_p50_ms` — single-query latency
of exact search on the same data; `build_s` — time to add the N vectors; `memory_mb` — growth of
the index (vectors, plus the graph of an HNSW); `rss_growth_mb` — growth of the process's
resident memory while building it. With several `--ef-search` values
the top-level figures are those of the smallest efSearch reaching `--target-recall`, and
`sweep` lists all.

Measured on the 2-core development machine (shared with a training job, so absolute times are
noisy; compare within a line):
- 100k, exact (`--exact-max 200000`): p50 16.2 ms, p99 25.5 ms, recall 1.0, 195 MB.
- 100k, HNSW M=32 efC=80 (build 344 s): recall@10 0.17 / 0.57 / 0.78 / 0.94 / 0.99 at
  efSearch 90 / 512 / 1024 / 2048 / 4096, p50 1.3 / 6.0 / 10.2 / 18.2 / 28.7 ms, against exact
  47.9 ms in the same run; 221 MB.
- 1M, exact: p50 266 ms, p99 338 ms, recall 1.0, 1953 MB (FAISS scans with one thread per query).
- 1M, HNSW M=16 efC=40 (build 299 s, a lighter graph than the store's default, built to fit
  the time): recall@10 0.04 / 0.11 / 0.27 at efSearch 286 / 1024 / 4096, p50 2.6 / 8.8 /
  35.2 ms, against exact 283 ms in the same run; 2091 MB.
- 1M, HNSW M=32 efC=80 (the store's default; build 1183 s): recall@10 0.06 / 0.35 / 0.77 at
  efSearch 286 / 2048 / 8192, p50 5.3 / 37.7 / 131.9 ms, against exact 356 ms; 2213 MB.
On random 512-d vectors HNSW reaches recall 0.95 only at about 40 % of the exact cost at 100k,
and far from it at 1M, so the issue's goal (1M, p50 ≤ 5 ms, recall ≥ 0.95) is not met on this
data; see `app/index/ann.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.index import ann  # noqa: E402


def unit_vectors(n: int, dim: int, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        x = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        out[start : start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def index_mb(index: faiss.Index) -> float:
    """Memory held by the index: the vectors, plus the graph for HNSW."""
    if isinstance(index, faiss.IndexHNSW):
        hnsw = index.hnsw
        graph = hnsw.neighbors.size() * 4 + hnsw.levels.size() * 4 + hnsw.offsets.size() * 8
        return (faiss.downcast_index(index.storage).codes.size() + graph) / 2**20
    return faiss.downcast_index(index).codes.size() / 2**20


def one_at_a_time(search, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows found and per-query latency in ms, one query per call."""
    found, times = [], []
    for q in queries:
        start = time.perf_counter()
        found.append(search(q[None]))
        times.append((time.perf_counter() - start) * 1000)
    return np.concatenate(found), np.array(times)


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="Indexed vectors.")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200, help="Queries timed one at a time.")
    parser.add_argument("--exact-queries", type=int, default=20, help="Queries timed on the exact index.")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="FAISS (OpenMP) threads.")
    parser.add_argument("--exact-max", type=int, default=ann.AnnParams().exact_max, help="The store's threshold.")
    parser.add_argument("--m", type=int, default=ann.AnnParams().hnsw_m)
    parser.add_argument("--ef-construction", type=int, default=ann.AnnParams().ef_construction)
    parser.add_argument("--ef-search", default="", help="Comma-separated efSearch values; default: the store's.")
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vectors", type=Path, help="An (N, D) .npy of real embeddings instead of random vectors.")
    args = parser.parse_args()

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    params = ann.AnnParams(exact_max=args.exact_max, hnsw_m=args.m, ef_construction=args.ef_construction)

    # 1. Data, queries, exact ground truth (batched; exact single-query latency on a few)
    if args.vectors is not None:
        # Real embeddings: the last `--queries` rows are the queries, the first N the data.
        loaded = np.load(args.vectors, mmap_mode="r")
        if len(loaded) < args.n + args.queries:
            parser.error(f"{args.vectors} holds {len(loaded)} rows; need --n + --queries = {args.n + args.queries}")
        rows = np.asarray(loaded[: args.n + args.queries], dtype=np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        data, queries, args.dim = rows[: args.n], rows[args.n :], rows.shape[1]
    else:
        data = unit_vectors(args.n, args.dim, rng)
        queries = unit_vectors(args.queries, args.dim, rng)
    kind = params.kind_for(args.n)
    before = rss_mb()
    start = time.perf_counter()
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(data)
    exact_build_s, exact_mb = time.perf_counter() - start, rss_mb() - before
    _, truth = exact.search(queries, args.k)
    exact_queries = queries if kind == "flat" else queries[: args.exact_queries]
    exact_found, exact_ms = one_at_a_time(lambda q: exact.search(q, args.k)[1], exact_queries)

    # 2. Build the index the store would build for N items (the exact one is that index for small N)
    if kind == "flat":
        index, build_s, memory_mb = exact, exact_build_s, exact_mb
    else:
        del exact
        before = rss_mb()
        start = time.perf_counter()
        index = ann.new_index(kind, args.dim, params)
        index.add(data)
        build_s = time.perf_counter() - start
        memory_mb = rss_mb() - before

    # 3. Time single queries at each efSearch
    efs = [int(e) for e in args.ef_search.split(",") if e] or [params.ef_search_for(args.n)]
    sweep = []
    for ef in efs if kind == "hnsw" else [None]:
        if ef is None:
            found, ms = exact_found, exact_ms
        else:
            sp = faiss.SearchParametersHNSW(efSearch=max(ef, args.k))
            found, ms = one_at_a_time(lambda q, sp=sp: index.search(q, args.k, params=sp)[1], queries)
        sweep.append(
            {
                "ef_search": ef,
                "p50_ms": round(float(np.percentile(ms, 50)), 3),
                "p99_ms": round(float(np.percentile(ms, 99)), 3),
                "qps": round(1000 / float(np.mean(ms)), 1),
                "recall_at_10": round(recall(found, truth, args.k), 4),
            }
        )
    best = next((s for s in sweep if s["recall_at_10"] >= args.target_recall), sweep[-1])
    line = {
        "n": args.n,
        "dim": args.dim,
        "data": str(args.vectors) if args.vectors is not None else "random",
        "index": kind if kind == "flat" else f"hnsw(M={args.m},efC={args.ef_construction},efS={best['ef_search']})",
        **{key: best[key] for key in ("p50_ms", "p99_ms", "qps", "recall_at_10")},
        "exact_p50_ms": round(float(np.percentile(exact_ms, 50)), 3),
        "build_s": round(build_s, 2),
        "memory_mb": round(index_mb(index), 1),
        "rss_growth_mb": round(memory_mb, 1),
        "threads": args.threads,
        "queries": args.queries,
    }
    if len(sweep) > 1:
        line["sweep"] = sweep
    print(json.dumps(line))


if __name__ == "__main__":
    main()
