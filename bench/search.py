"""Search benchmark of the index store's FAISS kinds, side by side: one JSON line of figures.

    python bench/search.py --n 100000                    # random vectors, the kind the store picks
    python bench/search.py --vectors real.npy --rows 1000000 --kinds flat,hnsw,ivf-sq8,ivf-pq
    python bench/search.py --vectors mix.npy --rows 10000000 --kinds ivf-pq --work-dir /big/dir

Data: without `--vectors`, random unit vectors in `--dim` dimensions (the hardest case for
every ANN index: no structure, nearest neighbours barely nearer than the rest). With
`--vectors FILE` (an (N, D) float32 `.npy`, read as a memmap, never written), the first
`--rows` rows are indexed and the `--queries` rows after them are the queries; rows are normalized
chunk by chunk (`bench/make_vectors.py` writes such files). Ground truth: exact inner-product
top-k by chunked brute force over the data.

Per kind (`--kinds`, default the store's kind for N; parameters `ann.AnnParams` defaults):
`build_s` — train + add; `train_s`; `index_bytes` / `index_mb` — size of the index as
written by `faiss.write_index` (codes, lists, graph); then per search setting (`--ef-search`
for hnsw, `--nprobe` for the IVF kinds, default the store's) `p50_ms` / `p99_ms` — latency of
single queries sent one at a time (as the server sends them), k = `--k`, on `--threads`
OpenMP threads; `qps` of that loop; `recall_at_10` — share of the exact top k found.
The IVF kinds are built once per `--nlist-max` (`AnnParams.nlist_max`) and searched at each
`--rerank` factor: 0 = by their codes alone, f > 0 = f·k candidates re-ranked exactly against
the float rows of the `--vectors` file, opened with `mmap_mode="r"` and passed to `ann.search`
as `vectors=`, as the server passes its snapshot's memory map. After each setting's loop:
`rss_mb`, `anon_mb` (anonymous: what the process holds in RAM, the index codes among it) and
`file_mb` (the rest of the resident set: file-backed pages, the vector file's among them, which
the kernel may drop) from /proc/self/smaps_rollup, and `major_faults` (pages read from disk).
The top-level figures of a kind are those of its fastest setting (p50) reaching
`--target-recall`, else of its best recall.

Builds are resumable: each kind's index is checkpointed under `--work-dir` (`faiss.write_index`,
atomically) after training and every `--checkpoint-every` added rows, with a JSON note of the
rows added; a rerun with the same arguments resumes from the last checkpoint (tqdm shows the
progress). Figures measured on this machine are in the README's performance section.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.index import ann  # noqa: E402

CHUNK = 100_000  # rows read, normalized and added at a time


def unit_vectors(n: int, dim: int, rng: np.random.Generator, chunk: int = CHUNK) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        x = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        out[start : start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def unit_rows(data: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of `data` as a fresh normalized float32 array (the source stays untouched)."""
    rows = np.array(data[start:stop], dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def load_vectors(path: Path, n: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` rows of the file (a read-only memmap) and the `queries` rows after them (normalized)."""
    loaded = np.load(path, mmap_mode="r")
    if loaded.ndim != 2 or len(loaded) < n + queries:
        raise SystemExit(f"{path} holds {loaded.shape} rows; need (N >= --n + --queries = {n + queries}, D)")
    return loaded[:n], unit_rows(loaded, n, n + queries)


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact inner-product top-k rows of every query, by brute force over chunks.  -> (Q, k)"""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    for start in tqdm(range(0, len(data), CHUNK), desc="exact", unit="chunk", leave=False):
        chunk = unit_rows(data, start, start + CHUNK)  # (C, D)
        scores = np.concatenate([best_scores, queries @ chunk.T], axis=1)  # (Q, k + C)
        found = np.broadcast_to(start + np.arange(len(chunk)), (len(queries), len(chunk)))
        rows = np.concatenate([best_rows, found], axis=1)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores, best_rows = np.take_along_axis(scores, top, 1), np.take_along_axis(rows, top, 1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_rows, order, 1)


def check_unit_rows(data: np.ndarray, sample: int = 1_000) -> None:
    """Re-ranking scores the file's rows as they are: refuse rows that are not unit-norm."""
    rows = np.asarray(data[:: max(len(data) // sample, 1)], dtype=np.float64)
    if len(rows) and np.abs(np.linalg.norm(rows, axis=1) - 1).max() > 1e-3:
        raise SystemExit("--rerank needs unit-norm rows in --vectors (bench/make_vectors.py writes them so)")


def memory() -> dict:
    """This process's resident memory (MB) from /proc/self/smaps_rollup and its major page faults."""
    faults = {"major_faults": resource.getrusage(resource.RUSAGE_SELF).ru_majflt}
    rollup = Path("/proc/self/smaps_rollup")
    if not rollup.is_file():
        return faults
    kb = {}
    for line in rollup.read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        kb[name.rstrip(":")] = int(value)
    rss, anon = kb.get("Rss", 0), kb.get("Anonymous", 0)
    return {"rss_mb": round(rss / 1024), "anon_mb": round(anon / 1024), "file_mb": round((rss - anon) / 1024)} | faults


def write_atomic(index: faiss.Index, path: Path, note: dict) -> None:
    """`faiss.write_index` to a temporary file, then rename over `path`; then the JSON note."""
    tmp = path.with_suffix(".tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)
    path.with_suffix(".json").write_text(json.dumps(note))


def build_resumable(kind: str, data: np.ndarray, params: ann.AnnParams, work: Path, every: int, tag: str) -> dict:
    """Build (or resume) the index of `kind` over `data`, checkpointed under `work`.

    Returns {"index", "build_s", "train_s", "path"}; times add up over resumed runs."""
    lists = f"-nlist{params.nlist_for(len(data))}" if kind in ann.COMPRESSED else ""
    path = work / f"{tag}-{kind}{lists}-{len(data)}.faiss"
    note_path = path.with_suffix(".json")
    note = json.loads(note_path.read_text()) if note_path.is_file() and path.is_file() else None
    if note is not None:
        index = faiss.read_index(str(path))
        print(f"{kind}: resuming at {index.ntotal} of {len(data)} rows from {path}", file=sys.stderr)
    else:
        note = {"rows_added": 0, "train_s": 0.0, "build_s": 0.0}
        index = ann.new_index(kind, data.shape[1], params, rows=len(data))  # type: ignore[arg-type]
        if not index.is_trained:
            start = time.perf_counter()
            ann.train(index, unit_sample(data, params), params)
            note["train_s"] = note["build_s"] = time.perf_counter() - start
            write_atomic(index, path, note)
    if index.ntotal != note["rows_added"]:
        raise SystemExit(f"{path}: {index.ntotal} rows in the index, {note['rows_added']} in its note; delete both")
    since = index.ntotal
    with tqdm(total=len(data), initial=index.ntotal, desc=f"add {kind}", unit="row") as bar:
        while index.ntotal < len(data):
            start, stop = index.ntotal, min(index.ntotal + CHUNK, len(data))
            began = time.perf_counter()
            index.add(unit_rows(data, start, stop))
            note["build_s"] += time.perf_counter() - began
            bar.update(stop - start)
            if index.ntotal - since >= every or index.ntotal == len(data):
                note["rows_added"], since = index.ntotal, index.ntotal
                write_atomic(index, path, note)
    if not path.is_file():  # an empty data set
        write_atomic(index, path, note)
    return {"index": index, "build_s": note["build_s"], "train_s": note["train_s"], "path": path}


def unit_sample(data: np.ndarray, params: ann.AnnParams) -> np.ndarray:
    sample = ann.train_sample(data, params)
    return sample / np.linalg.norm(sample, axis=1, keepdims=True)


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


def settings_for(kind: str, args: argparse.Namespace, params: ann.AnnParams) -> list[ann.AnnParams]:
    """The search settings to sweep for `kind` (efSearch for hnsw, nprobe for IVF kinds)."""
    if kind == "hnsw" and args.ef_search:
        return [replace(params, ef_search=int(e)) for e in args.ef_search.split(",")]
    if kind in ann.COMPRESSED:
        probes = ints(args.nprobe) or [params.nprobe]
        factors = (ints(args.k_factor) if kind == "ivf-pq" else []) or [params.refine_k_factor]
        reranks = ints(args.rerank) or [0]
        return [
            replace(params, nprobe=p, refine_k_factor=f, rerank_k_factor=r)
            for f in factors
            for r in reranks
            for p in probes
        ]
    return [params]


def ints(values: str) -> list[int]:
    return [int(v) for v in values.split(",") if v]


def setting_of(kind: str, index: faiss.Index, params: ann.AnnParams) -> dict:
    if kind == "hnsw":
        return {"ef_search": params.ef_search_for(index.ntotal)}
    if kind in ann.COMPRESSED:
        pq = {"k_factor": params.refine_k_factor} if kind == "ivf-pq" else {}
        return {"nprobe": params.nprobe, **pq, "rerank": params.rerank_k_factor}
    return {}


def measure_kind(kind: str, data, queries, truth, args, params: ann.AnnParams, work: Path) -> dict:
    """Build `kind` (resumably), then time its single-query search at each setting."""
    built = build_resumable(kind, data, params, work, args.checkpoint_every, args.tag)
    index = built["index"]
    sweep = []
    for setting in settings_for(kind, args, params):
        floats = data if kind in ann.COMPRESSED and setting.rerank_k_factor > 0 else None
        faults = memory()["major_faults"]
        found, ms = one_at_a_time(
            lambda q, s=setting, v=floats: ann.search(index, q[0], args.k, s, vectors=v)[1][None], queries
        )
        after = memory()
        sweep.append(
            {
                **setting_of(kind, index, setting),
                "p50_ms": round(float(np.percentile(ms, 50)), 3),
                "p99_ms": round(float(np.percentile(ms, 99)), 3),
                "qps": round(1000 / float(np.mean(ms)), 1),
                "recall_at_10": round(recall(found, truth, args.k), 4),
                **after,
                "major_faults": after["major_faults"] - faults,
            }
        )
    reached = [s for s in sweep if s["recall_at_10"] >= args.target_recall]
    best = min(reached, key=lambda s: s["p50_ms"]) if reached else max(sweep, key=lambda s: s["recall_at_10"])
    size = built["path"].stat().st_size
    line = {"kind": kind, "index": describe(kind, index, params), **best, "build_s": round(built["build_s"], 1)}
    line |= {"train_s": round(built["train_s"], 1), "index_bytes": size, "index_mb": round(size / 2**20, 1)}
    return line | ({"sweep": sweep} if len(sweep) > 1 else {})


def describe(kind: str, index: faiss.Index, params: ann.AnnParams) -> str:
    if kind == "hnsw":
        return f"HNSW{params.hnsw_m},Flat(efC={params.ef_construction})"
    if kind in ann.COMPRESSED:
        return ann.factory_string(kind, index.d, index.ntotal, params)  # type: ignore[arg-type]
    return "Flat"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", "--rows", dest="n", type=int, default=100_000, help="Indexed vectors.")
    parser.add_argument("--dim", type=int, default=512, help="Dimension of random vectors.")
    parser.add_argument("--vectors", type=Path, help="An (N, D) .npy of real embeddings instead of random vectors.")
    parser.add_argument("--kinds", default="", help=f"Comma-separated kinds of {ann.KINDS}; default: the store's.")
    parser.add_argument("--queries", type=int, default=200, help="Queries timed one at a time.")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="FAISS (OpenMP) threads.")
    parser.add_argument("--exact-max", type=int, default=ann.AnnParams().exact_max, help="The store's threshold.")
    parser.add_argument("--m", type=int, default=ann.AnnParams().hnsw_m)
    parser.add_argument("--ef-construction", type=int, default=ann.AnnParams().ef_construction)
    parser.add_argument("--ef-search", default="", help="Comma-separated efSearch values; default: the store's.")
    parser.add_argument("--nprobe", default="", help="Comma-separated nprobe values; default: the store's.")
    parser.add_argument("--k-factor", default="", help="Comma-separated ivf-pq re-ranking factors.")
    parser.add_argument("--rerank", default="0", help="Comma-separated exact re-ranking factors of the IVF kinds.")
    parser.add_argument("--nlist-max", default="", help="Comma-separated AnnParams.nlist_max: an IVF build each.")
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, help="Where index checkpoints live (default: a temporary folder).")
    parser.add_argument("--checkpoint-every", type=int, default=1_000_000, help="Rows added between checkpoints.")
    parser.add_argument("--tag", default="", help="Checkpoint name prefix (default: the data's name).")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    load_start = os.getloadavg()
    faiss.omp_set_num_threads(args.threads)
    params = ann.AnnParams(exact_max=args.exact_max, hnsw_m=args.m, ef_construction=args.ef_construction)
    kinds = [kind for kind in args.kinds.split(",") if kind] or [params.kind_for(args.n)]
    if unknown := set(kinds) - set(ann.KINDS):
        raise SystemExit(f"unknown kinds {sorted(unknown)}; valid kinds: {', '.join(ann.KINDS)}")

    # 1. Data, queries, exact ground truth (chunked brute force)
    if args.vectors is not None:
        data, queries = load_vectors(args.vectors, args.n, args.queries)
        args.tag = args.tag or args.vectors.stem
    else:
        rng = np.random.default_rng(args.seed)
        data, queries = unit_vectors(args.n, args.dim, rng), unit_vectors(args.queries, args.dim, rng)
        args.tag = args.tag or f"random{args.dim}-seed{args.seed}"
    if any(ints(args.rerank)):
        check_unit_rows(data)
    truth = exact_top_k(data, queries, args.k)

    # 2. Build each kind (resumably) and time its single queries, one kind at a time
    with nullcontext(args.work_dir) if args.work_dir else tempfile.TemporaryDirectory() as work:
        Path(work).mkdir(parents=True, exist_ok=True)
        results = []
        for kind in kinds:
            lists = (ints(args.nlist_max) or [params.nlist_max]) if kind in ann.COMPRESSED else [params.nlist_max]
            for nlist_max in lists:
                kind_params = replace(params, nlist_max=nlist_max)
                results.append(measure_kind(kind, data, queries, truth, args, kind_params, Path(work)))
                print(json.dumps(results[-1]), file=sys.stderr)  # each build's figures as soon as they are known
    line = {
        "n": args.n,
        "dim": data.shape[1],
        "data": str(args.vectors) if args.vectors is not None else "random",
        "threads": args.threads,
        "queries": len(queries),
        "k": args.k,
        "kinds": results,
        "load_average": {"start": load_start, "end": os.getloadavg()},
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
