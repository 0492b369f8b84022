"""Held-out zero-shot probes for the base model: what `train-base` reports after training.

Every probe uses only "test" splits or freshly drawn scenes that no training sample used.
"""

from __future__ import annotations

import contextlib
import random

from training.evaluation.zero_shot import Probe
from training.sources.base import load_source
from training.sources.scenes import SceneSpec, render_scene

PROBE_COLORS = ("red", "green", "blue", "yellow")
PROBE_SHAPES = ("circle", "square", "triangle", "star")
COUNT_LABELS = ("one shape", "two shapes", "three shapes", "four shapes")


def scene_probe(name: str, field: str, values, labels, *, n: int, seed: int, template: str) -> Probe:
    """Scenes whose `field` takes each of `values` in turn, every other fact random."""
    rng = random.Random(f"probe/{name}/{seed}")
    images, targets = [], []
    for i in range(n):
        target = i % len(values)
        spec = SceneSpec(
            shape=rng.choice(PROBE_SHAPES),
            color=rng.choice(PROBE_COLORS),
            size="large",
            count=rng.randint(1, 2),
            position=rng.choice(["left", "right", "top", "bottom", "center"]),
            background="light",
        )
        spec = SceneSpec(**{**spec.__dict__, field: values[target]})
        images.append(render_scene(spec, rng=rng))
        targets.append(target)
    return Probe(name=name, images=images, targets=targets, labels=list(labels), template=template)


def source_probe(
    name: str, source: str, attribute: str, values, labels, *, limit: int, seed: int, template: str
) -> Probe:
    """A source's test split; an image's target is the label of its `attribute` value."""
    samples = load_source(source, split="test", limit=limit, seed=seed)
    index = {value: i for i, value in enumerate(values)}
    return Probe(
        name=name,
        images=[sample.image for sample in samples],
        targets=[index[sample.attributes[attribute]] for sample in samples],
        labels=list(labels),
        template=template,
    )


def base_model_probes(seed: int = 0, per_probe: int = 400) -> list[Probe]:
    """The probes of the base-model report (missing optional data sets are left out)."""
    from training.sources.cpunks import PUNK_TYPES, TYPE_PHRASES
    from training.sources.fashion_mnist import FASHION_CLASSES, FASHION_NOUNS

    probes = [
        scene_probe("scene colour (4)", "color", PROBE_COLORS, [f"{c} shape" for c in PROBE_COLORS],
                    n=per_probe, seed=seed, template="This is a photo of a {}"),
        scene_probe("scene shape (4)", "shape", PROBE_SHAPES, PROBE_SHAPES,
                    n=per_probe, seed=seed, template="This is a photo of a {}"),
        scene_probe("scene count (4)", "count", (1, 2, 3, 4), COUNT_LABELS,
                    n=per_probe, seed=seed, template="This is a photo of {}"),
        source_probe("cpunks type (5)", "cpunks", "type", PUNK_TYPES, [TYPE_PHRASES[t] for t in PUNK_TYPES],
                     limit=per_probe, seed=seed, template="This is a photo of {}"),
    ]
    with contextlib.suppress(FileNotFoundError):  # Debian's dataset-fashion-mnist is optional (`make data`)
        probes.append(source_probe("fashion-mnist (10)", "fashion-mnist", "label", FASHION_CLASSES, FASHION_NOUNS,
                                   limit=1000, seed=seed, template="This is a photo of {}"))
    return probes
