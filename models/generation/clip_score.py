"""CLIP score: how well generated images match a target text — the paper's SDXL evaluation.

The paper compares `prompt + edit` arithmetic with PC-CLIP in SDXL's text_encoder slot against
the same arithmetic with the original encoder, by the CLIP score of the images against a
target text ("a snowy forest"): reported 0.532 → 0.542. Score with a fixed judge `Encoder`
(ideally not the PC-CLIP being evaluated) so both arms are measured with the same ruler.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from models.encoder import Encoder


def clip_score(encoder: Encoder, images: Sequence[Image.Image], texts: Sequence[str] | str) -> torch.Tensor:
    """cos(ĝ(imageᵢ), f̂(textᵢ)) for each image; one text scores every image.  -> (N,) float32

    Raw cosine in [−1, 1] (torchmetrics' CLIPScore is 100 · max(cos, 0) of the same number).
    """
    targets = [texts] * len(images) if isinstance(texts, str) else list(texts)
    if len(targets) != len(images):
        raise ValueError(f"{len(images)} images but {len(targets)} texts; give one text, or one per image")
    if not images:
        return torch.empty(0)
    image_vectors = encoder.encode_images(images)  # (N, D), unit norm
    unique = list(dict.fromkeys(targets))
    text_vectors = encoder.encode_texts(unique)  # (U, D), unit norm
    rows = torch.tensor([unique.index(text) for text in targets])
    return (image_vectors * text_vectors[rows]).sum(dim=-1)  # (N,)


@dataclass(frozen=True)
class ScoreSummary:
    mean: float
    sem: float  # standard error of the mean (NaN for fewer than two images)
    n: int
    scores: tuple[float, ...] = ()  # each image's score, in the order given


def compare_arms(
    encoder: Encoder, arms: Mapping[str, Sequence[Image.Image]], targets: Sequence[str] | str
) -> dict[str, ScoreSummary]:
    """CLIP score of each arm's images against the same targets, e.g.
    `{"pcclip": [...], "base": [...]}` with one target per image (same order in every arm)."""
    out = {}
    for name, images in arms.items():
        scores = clip_score(encoder, images, targets)
        n = int(scores.numel())
        sem = float(scores.std(unbiased=True)) / math.sqrt(n) if n > 1 else float("nan")
        mean = float(scores.mean()) if n else float("nan")
        out[name] = ScoreSummary(mean=mean, sem=sem, n=n, scores=tuple(scores.tolist()))
    return out
