"""The FAISS kinds of app/index/ann.py: choice by size or setting, recall, training, persistence."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from app.index import ann
from app.index.ann import AnnParams

DIM = 32
faiss.omp_set_num_threads(1)
# Small sizes: few lists, a sample smaller than the rows, so training on a sample is exercised.
SMALL = AnnParams(nlist_max=16, nprobe=8, refine_k_factor=50, train_max=1_500, train_min=100)


def clustered(rng: np.random.Generator, n: int, clusters: int = 40) -> np.ndarray:
    """Unit vectors around `clusters` random centres (spread 0.3): data with structure, as embeddings have."""
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall_at_10(index: faiss.Index, data: np.ndarray, queries: np.ndarray, params: AnnParams) -> float:
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    found = [ann.search(index, q, 10, params)[1] for q in queries]
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return clustered(rng, 5_000), clustered(rng, 50)


@pytest.mark.parametrize(
    ("params", "live", "kind"),
    [
        (AnnParams(), 200_000, "flat"),
        (AnnParams(), 200_001, "hnsw"),
        (AnnParams(), 2_000_000, "ivf-sq8"),
        (AnnParams(kind="ivf-pq"), 50_000, "ivf-pq"),
        (AnnParams(kind="ivf-sq8"), 50_000, "ivf-sq8"),
        (AnnParams(kind="ivf-pq"), 9_999, "flat"),  # too few rows to train: exact
        (AnnParams(kind="hnsw"), 10, "hnsw"),
    ],
)
def test_the_kind_follows_the_size_or_the_setting(params, live, kind):
    assert params.kind_for(live) == kind


def test_an_unknown_kind_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match="ivf-sq8"):
        AnnParams(kind="ivf-flat")


def test_lists_grow_with_the_square_root_of_the_rows_up_to_the_cap():
    params = AnnParams()
    assert [params.nlist_for(n) for n in (0, 10_000, 250_000, 1_000_000, 10**9)] == [1, 128, 512, 1024, 4096]


@pytest.mark.parametrize("kind", ann.COMPRESSED)
def test_a_compressed_kind_finds_the_true_neighbours(data, kind):
    vectors, queries = data
    index = ann.build_index(kind, vectors, SMALL)
    assert ann.kind_of(index) == kind and index.ntotal == len(vectors)
    assert recall_at_10(index, vectors, queries, SMALL) >= 0.9
    # fewer lists probed finds fewer: the setting reaches the search
    assert recall_at_10(index, vectors, queries, AnnParams(nprobe=1)) < recall_at_10(index, vectors, queries, SMALL)


def test_training_uses_a_sample_of_the_rows(data, monkeypatch):
    vectors, _ = data
    seen = []
    monkeypatch.setattr(faiss.IndexIVFScalarQuantizer, "train", lambda self, x: seen.append(len(x)))
    index = ann.new_index("ivf-sq8", DIM, SMALL, rows=len(vectors))
    ann.train(index, vectors, SMALL)
    assert seen == [SMALL.train_max]
    sample = ann.train_sample(vectors, SMALL)
    assert len({tuple(row) for row in sample}) == SMALL.train_max  # drawn without replacement
    assert np.array_equal(sample, ann.train_sample(vectors, SMALL))  # seeded: a rebuild trains alike


@pytest.mark.parametrize("kind", ann.KINDS)
def test_every_kind_survives_a_save_and_load_round_trip(data, kind, tmp_path):
    vectors, queries = data
    index = ann.build_index(kind, vectors, SMALL)
    faiss.write_index(index, str(tmp_path / "ann.faiss"))
    loaded = faiss.read_index(str(tmp_path / "ann.faiss"))
    assert ann.kind_of(loaded) == kind and loaded.ntotal == len(vectors)
    for q in queries[:5]:
        assert np.array_equal(ann.search(loaded, q, 10, SMALL)[1], ann.search(index, q, 10, SMALL)[1])


@pytest.mark.parametrize("kind", ann.COMPRESSED)
def test_rows_added_after_the_build_are_found(data, kind):
    vectors, _ = data
    index = ann.build_index(kind, vectors[:4_000], SMALL)
    index.add(vectors[4_000:])  # the store adds new items to the trained index
    found = [row in ann.search(index, vectors[row], 10, SMALL)[1] for row in range(4_000, 4_100)]
    assert np.mean(found) >= 0.95


def test_reranking_from_the_float_rows_scores_exactly_and_recalls_more(data, tmp_path):
    vectors, queries = data
    index = ann.build_index("ivf-sq8", vectors, SMALL)
    np.save(tmp_path / "rows.npy", vectors)
    floats = np.load(tmp_path / "rows.npy", mmap_mode="r")  # as the store reads a snapshot segment
    coarse = AnnParams(nlist_max=16, nprobe=2, train_max=1_500)
    for q in queries[:10]:
        scores, rows = ann.search(index, q, 10, coarse, vectors=floats)
        assert np.allclose(scores, vectors[rows] @ q, atol=1e-6) and list(scores) == sorted(scores, reverse=True)
    plain = recall_at_10(index, vectors, queries, coarse)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    found = [ann.search(index, q, 10, coarse, vectors=floats)[1] for q in queries]
    reranked = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))
    assert reranked > plain


def test_rerank_pads_like_faiss_when_there_are_fewer_candidates_than_k():
    vectors = np.eye(4, dtype=np.float32)
    scores, rows = ann.rerank(vectors[2], np.array([3, 2, -1, 2]), vectors, k=4)
    assert rows.tolist() == [2, 3, -1, -1] and scores[0] == 1.0 and np.isneginf(scores[2:]).all()
