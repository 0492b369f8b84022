"""The paper's geometry check: does f(c_AB) point along f(A) − f(B)?

distance = 1 − cos( normalize(f(A) − f(B)), normalize(f(c_AB)) ) for class prompts A, B and
the text c_AB stating how A differs from B; lower is better (PAPER.md: PC-CLIP 0.92 vs CLIP
1.04 on CIFAR-100). Averaged over every ordered pair of classes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from models import geometry
from models.encoder import Encoder

COLOUR_CLASSES = ("red", "green", "blue", "yellow", "orange", "purple")
SHAPE_CLASSES = ("circle", "square", "triangle", "star")


def class_pairs() -> list[tuple[str, str, str]]:
    """(prompt A, prompt B, difference text c_AB) for colour and shape classes of drawn scenes."""
    rows = []
    for a, b in itertools.permutations(COLOUR_CLASSES, 2):
        rows.append((f"This is a photo of a {a} shape", f"This is a photo of a {b} shape",
                     f"The first image shows {a} objects, while the second shows {b} objects."))
    for a, b in itertools.permutations(SHAPE_CLASSES, 2):
        rows.append((f"This is a photo of a {a}", f"This is a photo of a {b}",
                     f"The first image shows {a}s, while the second shows {b}s."))
    return rows


def distances(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """1 − cos(normalize(a − b), c) per row.  (K, D) × 3 -> (K,)"""
    return 1 - (geometry.differences(a, b) * geometry.normalize(c)).sum(dim=1)


def distance(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> float:
    """Mean of 1 − cos(normalize(a − b), c) over rows.  (K, D) × 3 -> float"""
    return float(distances(a, b, c).mean())


def geometry_distance(encoder: Encoder, rows: Sequence[tuple[str, str, str]] | None = None) -> float:
    rows = rows or class_pairs()
    a, b, c = (encoder.encode_texts([row[i] for row in rows]) for i in range(3))
    return distance(a, b, c)
