"""Pure tensor math of PC-CLIP (PAPER.md). No I/O, no devices chosen here.

Shapes: D embedding dim, N items, P pairs, T texts, C classes, K comparative pairs.
Inputs need not be normalized; every function normalizes what the paper normalizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)


def differences(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """normalize(ĝ(I1) − ĝ(I2)) with ĝ = g/|g|.  (P, D), (P, D) -> (P, D)"""
    return normalize(normalize(first) - normalize(second))


def difference_scores(first: torch.Tensor, second: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """Cosine of each difference text with each pair's image difference.  -> (P, T)

    A positive score means the text describes how `first` differs from `second`; swapping
    the pair flips the sign (the paper's difference classification: correct iff s > 0).
    """
    return differences(first, second) @ normalize(texts).T


def similarity(images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """Cosine similarity matrix.  (N, D), (T, D) -> (N, T)"""
    return normalize(images) @ normalize(texts).T


def comparative_update(
    prototypes: torch.Tensor, pairs: torch.Tensor, comparatives: torch.Tensor, alpha: float = 0.8
) -> torch.Tensor:
    """Comparative prompting (PAPER.md): move the second class of each confusable pair.

    prototypes (C, D) class-prompt embeddings; pairs (K, 2) long, row k = (a_k, b_k);
    comparatives (K, D) embeddings of the texts "a_k ..., while b_k ...".

        s_b  = mean over k with b_k = b of ( t̂_{a_k} − ĉ_k )
        t'_b = normalize( α·t̂_b + (1 − α)·s_b )

    Classes that are no pair's second class keep t̂_b.  -> (C, D), normalized.
    """
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.shape[0] != comparatives.shape[0]:
        shapes = f"{tuple(pairs.shape)}, {tuple(comparatives.shape)}"
        raise ValueError(f"pairs must be (K, 2) and comparatives (K, D); got {shapes}")
    t = normalize(prototypes)  # (C, D)
    if pairs.shape[0] == 0:
        return t
    a, b = pairs[:, 0], pairs[:, 1]  # (K,)
    shifts = t[a] - normalize(comparatives)  # (K, D)
    sums = torch.zeros_like(t).index_add_(0, b, shifts)  # (C, D)
    counts = torch.zeros(t.shape[0], dtype=t.dtype, device=t.device).index_add_(0, b, torch.ones_like(b, dtype=t.dtype))
    moved = counts > 0  # (C,)
    s = sums[moved] / counts[moved, None]
    updated = t.clone()
    updated[moved] = normalize(alpha * t[moved] + (1 - alpha) * s)
    return updated


def weighted_sum(vectors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Embedding arithmetic: normalize( Σ wᵢ · v̂ᵢ ).  (N, D), (N,) -> (D,)

    Each term is normalized first so a weight means the same for every term, whatever its
    norm; the sum is normalized last so the result lives on the unit sphere like every
    other embedding. A sum of zero length (e.g. v − v) raises ValueError.
    """
    total = (weights[:, None].to(vectors.dtype) * normalize(vectors)).sum(dim=0)  # (D,)
    if total.norm() < 1e-8:
        raise ValueError("the weighted terms cancel out: their sum has zero length")
    return normalize(total)


def project(embeddings: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Scores of normalized embeddings along a direction (e.g. f("larger")).  (N, D), (D,) -> (N,)"""
    return normalize(embeddings) @ normalize(direction)
