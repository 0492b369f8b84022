"""bench/search.py on a small read-only `.npy` (its `--vectors` path once crashed writing into it)."""

from __future__ import annotations

import json
from functools import partial

import benchrun
import numpy as np

bench_process = partial(benchrun.bench_process, "search.py")
run_bench = partial(benchrun.run_bench, "search.py")


def test_vectors_from_a_read_only_file_are_measured_per_kind(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, 16)).astype(np.float32)
    rows = 3 * centres[rng.integers(0, 20, 2_050)] + rng.standard_normal((2_050, 16)).astype(np.float32)
    path = tmp_path / "vectors.npy"
    np.save(path, rows)  # not normalized: the bench normalizes copies, never the file
    path.chmod(0o444)
    before = path.read_bytes()

    line, _ = run_bench("--vectors", str(path), "--n", "2000", "--queries", "50", "--kinds", "flat,ivf-sq8",
                     "--nprobe", "1,64", "--threads", "1")  # fmt: skip

    assert path.read_bytes() == before
    flat, ivf = line["kinds"]
    assert (line["n"], line["dim"], line["queries"]) == (2_000, 16, 50)
    assert flat["kind"] == "flat" and flat["recall_at_10"] == 1.0  # exact search agrees with the chunked truth
    assert ivf["index"].startswith("IVF") and ivf["index_bytes"] > 0
    low, high = (s["recall_at_10"] for s in ivf["sweep"])
    assert low < high and high >= 0.9  # all 32 lists probed ≈ exact up to SQ8 rounding


def test_a_build_resumes_from_its_last_checkpoint(tmp_path):
    import faiss

    path = tmp_path / "vectors.npy"
    rows = np.random.default_rng(1).standard_normal((1_020, 8)).astype(np.float32)
    np.save(path, rows)
    partial = faiss.IndexFlatIP(8)  # a checkpoint left by a run stopped after 500 rows
    partial.add(rows[:500] / np.linalg.norm(rows[:500], axis=1, keepdims=True))
    faiss.write_index(partial, str(tmp_path / "vectors-flat-1000.faiss"))
    (tmp_path / "vectors-flat-1000.json").write_text(json.dumps({"rows_added": 500, "train_s": 0.0, "build_s": 0.0}))

    line, log = run_bench("--vectors", str(path), "--n", "1000", "--queries", "20", "--kinds", "flat",
                          "--work-dir", str(tmp_path))  # fmt: skip

    assert "resuming at 500 of 1000 rows" in log
    assert json.loads((tmp_path / "vectors-flat-1000.json").read_text())["rows_added"] == 1000
    assert line["kinds"][0]["recall_at_10"] == 1.0  # rows 500… were added after the first 500, in order


def test_ivf_settings_are_measured_with_and_without_exact_reranking_per_nlist(tmp_path):
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((20, 16)).astype(np.float32)
    rows = 3 * centres[rng.integers(0, 20, 2_030)] + rng.standard_normal((2_030, 16)).astype(np.float32)
    path = tmp_path / "unit.npy"
    np.save(path, rows / np.linalg.norm(rows, axis=1, keepdims=True))  # re-ranking scores the file's rows as they are
    path.chmod(0o444)

    line, _ = run_bench("--vectors", str(path), "--n", "2000", "--queries", "30", "--kinds", "ivf-sq8",
                        "--nprobe", "1", "--rerank", "0,8", "--nlist-max", "16,32", "--threads", "1",
                        "--work-dir", str(tmp_path / "ckpt"))  # fmt: skip

    assert [build["index"] for build in line["kinds"]] == ["IVF16,SQ8", "IVF32,SQ8"]
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("*.faiss")) == [
        "unit-ivf-sq8-nlist16-2000.faiss", "unit-ivf-sq8-nlist32-2000.faiss"]  # fmt: skip
    for build in line["kinds"]:
        plain, reranked = build["sweep"]
        assert (plain["rerank"], reranked["rerank"]) == (0, 8)
        assert reranked["recall_at_10"] >= plain["recall_at_10"]
        assert reranked["anon_mb"] > 0 and reranked["rss_mb"] >= reranked["anon_mb"] + reranked["file_mb"] - 1
    assert set(line["load_average"]) == {"start", "end"}


def test_reranking_refuses_rows_that_are_not_unit_norm(tmp_path):
    path = tmp_path / "raw.npy"
    np.save(path, 2 * np.ones((1_100, 8), dtype=np.float32))
    result = bench_process("--vectors", str(path), "--n", "1000", "--queries", "20", "--kinds", "ivf-sq8",
                           "--rerank", "4")  # fmt: skip
    assert result.returncode != 0 and "unit-norm" in result.stderr
