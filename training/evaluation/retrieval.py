"""Text→image and image→text retrieval recall on held-out captioned images."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from models import geometry
from models.encoder import Encoder
from training.sources.base import load_source

KS = (1, 5, 10)


def recall_at(similarity: torch.Tensor, ks: Sequence[int] = KS) -> dict[str, float]:
    """R@k for queries (rows) whose one right answer is the item with the same index.  (N, N)"""
    right = similarity.diagonal()[:, None]  # (N, 1)
    rank = (similarity > right).sum(dim=1)  # (N,) items scoring strictly better than the right one
    return {f"R@{k}": (rank < k).float().mean().item() for k in ks}


def retrieval_recall(encoder: Encoder, sources: Sequence[str] = ("cpunks", "scenes"), per_source: int = 200,
                     seed: int = 0) -> dict[str, dict[str, float]]:
    """Per source: text→image and image→text recall over its held-out captioned images."""
    results = {}
    for source in sources:
        samples = load_source(source, split="test", limit=per_source, seed=seed)
        images = encoder.encode_images([sample.image for sample in samples])
        texts = encoder.encode_texts([sample.caption for sample in samples])
        similarity = geometry.similarity(texts, images)  # (N texts, N images)
        results[source] = {
            **{f"text→image {k}": v for k, v in recall_at(similarity).items()},
            **{f"image→text {k}": v for k, v in recall_at(similarity.T).items()},
        }
    return results
