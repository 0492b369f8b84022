"""Zero-shot classification of held-out images: the metric behind every accuracy we report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from models import geometry
from models.encoder import Encoder

DEFAULT_TEMPLATE = "This is a photo of a {}"


@dataclass(frozen=True)
class Probe:
    """Held-out images with one true label each, classified over `labels` via `template`."""

    name: str
    images: Sequence[Image.Image]
    targets: Sequence[int]  # index into `labels`, one per image
    labels: Sequence[str]
    template: str = DEFAULT_TEMPLATE

    def __post_init__(self) -> None:
        if len(self.images) != len(self.targets):
            raise ValueError(f"probe {self.name}: {len(self.images)} images but {len(self.targets)} targets")
        if not self.images:
            raise ValueError(f"probe {self.name} has no images")

    @property
    def prompts(self) -> list[str]:
        return [self.template.format(label) for label in self.labels]


def predict(encoder: Encoder, probe: Probe) -> torch.Tensor:
    """Index of the best-matching label per image.  -> (N,) long"""
    images = encoder.encode_images(probe.images)
    prompts = encoder.encode_texts(probe.prompts)
    return geometry.similarity(images, prompts).argmax(dim=1)


def accuracy(predictions: torch.Tensor, targets: Sequence[int]) -> float:
    return (predictions == torch.as_tensor(targets)).float().mean().item()


def evaluate_probes(encoder: Encoder, probes: Sequence[Probe]) -> dict[str, dict[str, float]]:
    """Accuracy, chance level and size of every probe."""
    results = {}
    for probe in probes:
        predictions = predict(encoder, probe)
        results[probe.name] = {
            "accuracy": accuracy(predictions, probe.targets),
            "chance": 1 / len(probe.labels),
            "n": len(probe.targets),
            "correct": int((predictions == torch.as_tensor(probe.targets)).sum()),
        }
    return results
