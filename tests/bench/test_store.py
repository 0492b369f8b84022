"""bench/store.py: the server's index store built from a vector file and measured per re-ranking factor."""

from __future__ import annotations

from functools import partial

import benchrun
import numpy as np

run_bench = partial(benchrun.run_bench, "store.py")


def test_a_compressed_store_is_built_once_and_searched_from_a_fresh_process_per_factor(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, 16)).astype(np.float32)
    rows = 3 * centres[rng.integers(0, 40, 10_600)] + rng.standard_normal((10_600, 16)).astype(np.float32)
    path = tmp_path / "vectors.npy"
    np.save(path, rows / np.linalg.norm(rows, axis=1, keepdims=True))
    args = ("--vectors", str(path), "--n", "10500", "--queries", "50", "--nprobe", "1000",
            "--snapshot-every", "4000", "--work-dir", str(tmp_path / "work"))  # fmt: skip

    line, log = run_bench(*args, "--rerank", "1,4")

    assert (line["n"], line["dim"], line["queries"]) == (10_500, 16, 50) and "put" in log
    first, second = line["settings"]
    assert [first["rerank"], second["rerank"]] == [1, 4]
    assert {first["index_type"], second["index_type"]} == {"ivf-sq8"}  # trained at the full snapshot
    assert second["recall_at_10"] >= 0.99  # every list probed, candidates re-scored exactly
    assert second["rss_mb"] > 0 and second["after_queries"]["rss_mb"] > 0

    again, log = run_bench(*args, "--rerank", "4")  # the folder is reused, not rebuilt
    assert again["build_s"] == line["build_s"] and "put" not in log
    assert again["settings"][0]["recall_at_10"] == second["recall_at_10"]
