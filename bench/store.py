"""The server's index store (`IndexStore`) on a vector file, per re-ranking factor: one JSON line.

    python bench/store.py --vectors mix.npy --n 1000000 --kind ivf-sq8 --rerank 1,4 --work-dir DIR

Where `bench/search.py` measures bare FAISS indexes, this measures what the server runs: the
first `--n` rows of `--vectors` (an (N, D) float32 `.npy`, e.g. from `bench/make_vectors.py`)
are put through `IndexStore.put` in batches of `--batch` (write-ahead log, snapshots every
`--snapshot-every` records, the kind's index trained when a full snapshot rebuilds it), then
one full snapshot. The folder under `--work-dir` is reused by a rerun with the same arguments.

Then, per `--rerank` factor (`PCCLIP_INDEX_RERANK`; 1 = the codes' k hits, re-scored exactly
but not re-ordered beyond them), a fresh process opens the folder as the server does and
reports `open_s`; memory after opening and after the queries (`rss_mb`, `anon_mb` = held in
RAM, `file_mb` = file-backed pages such as the memory-mapped float rows, which the kernel may
drop; `major_faults`); `p50_ms` / `p99_ms` of `store.search` one query at a time (k = 10,
`--threads` OpenMP threads); `recall_at_10` against the exact top 10 of the `--queries` rows
after the first `--n`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.index import ann  # noqa: E402
from app.index.backend import NewItem  # noqa: E402
from app.index.store import IndexStore  # noqa: E402
from bench.search import exact_top_k, ints, load_vectors, memory, recall, unit_rows  # noqa: E402

FINGERPRINT = "bench-store"  # the stamp of the folder: no model made these vectors
K = 10


def params_for(args: argparse.Namespace, rerank: int) -> ann.AnnParams:
    return ann.AnnParams(kind=args.kind, nprobe=args.nprobe, rerank_k_factor=rerank)


def build(args: argparse.Namespace, data: np.ndarray, folder: Path) -> dict:
    """Put the rows into a store at `folder` (unless a finished build is there); its figures."""
    done = folder / "bench-built.json"
    if done.is_file():
        return json.loads(done.read_text())
    started = time.monotonic()
    store = IndexStore.open(folder, fingerprint=FINGERPRINT, embed_dim=data.shape[1],
                            params=params_for(args, 1), snapshot_every=args.snapshot_every)  # fmt: skip
    with store, tqdm(total=len(data), desc="put", unit="row") as progress:
        for start in range(len(store), len(data), args.batch):  # a rerun goes on where the log ends
            rows = unit_rows(data, start, min(start + args.batch, len(data)))
            store.put([NewItem(str(start + i), row) for i, row in enumerate(rows)])
            progress.update(len(rows))
        store.snapshot(full=True)
        figures = {"build_s": round(time.monotonic() - started, 1), **store.describe()}
    done.write_text(json.dumps(figures))
    return figures


def measure(args: argparse.Namespace, folder: Path, rerank: int, queries: np.ndarray, truth: np.ndarray) -> dict:
    """Open the folder as the server does and search it one query at a time (a fresh process)."""
    faiss.omp_set_num_threads(args.threads)
    started = time.monotonic()
    store = IndexStore.open(folder, fingerprint=FINGERPRINT, params=params_for(args, rerank))
    opened = {"open_s": round(time.monotonic() - started, 2), **memory()}
    with store:
        found, times = [], []
        for q in queries:
            began = time.perf_counter()
            hits = store.search(q, K)
            times.append((time.perf_counter() - began) * 1000)
            found.append([int(hit.id) for hit in hits] + [-1] * (K - len(hits)))
        figures = {"rerank": rerank, "index_type": store.describe()["index_type"], **opened}
        return figures | {
            "p50_ms": round(float(np.percentile(times, 50)), 3),
            "p99_ms": round(float(np.percentile(times, 99)), 3),
            "recall_at_10": round(recall(np.array(found), truth, K), 4),
            "after_queries": memory(),
        }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=Path, required=True, help="(N, D) float32 .npy")
    parser.add_argument("--n", type=int, default=100_000, help="rows put into the store")
    parser.add_argument("--queries", type=int, default=500, help="rows after the first --n, as queries")
    parser.add_argument("--kind", default="ivf-sq8", choices=ann.KINDS, help="PCCLIP_INDEX_KIND")
    parser.add_argument("--nprobe", type=int, default=ann.AnnParams.nprobe, help="PCCLIP_INDEX_NPROBE")
    parser.add_argument("--rerank", type=ints, default=[1, 4], help="PCCLIP_INDEX_RERANK factors, comma-separated")
    parser.add_argument("--batch", type=int, default=1_000, help="items per put")
    parser.add_argument("--snapshot-every", type=int, default=100_000, help="PCCLIP_INDEX_SNAPSHOT_EVERY")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads of the searches")
    parser.add_argument("--work-dir", type=Path, required=True, help="where the store's folder is built")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    data, queries = load_vectors(args.vectors, args.n, args.queries)
    folder = args.work_dir / f"store-{args.vectors.stem}-{args.n}-{args.kind}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    built = build(args, data, folder)
    truth = exact_top_k(data, queries, K)
    spawn = multiprocessing.get_context("spawn")  # each factor measured from a cold process
    settings = []
    for rerank in args.rerank:
        with spawn.Pool(1) as pool:
            settings.append(pool.apply(measure, (args, folder, rerank, queries, truth)))
    line = {"n": args.n, "dim": data.shape[1], "queries": len(queries), "nprobe": args.nprobe,
            "threads": args.threads, "build_s": built["build_s"], "settings": settings}  # fmt: skip
    print(json.dumps(line))


if __name__ == "__main__":
    main()
