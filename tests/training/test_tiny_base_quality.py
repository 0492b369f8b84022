"""What the shipped tiny-base must know, checked on freshly drawn held-out scenes."""

import itertools

import pytest
import torch

from training.evaluation.probes import PROBE_COLORS
from training.evaluation.zero_shot import Probe, predict
from training.sources.scenes import SceneSpec, render_scene


def test_names_the_colour_of_drawn_shapes(encoder):
    specs = [
        SceneSpec(shape=shape, color=color, size="large", count=1, position="center")
        for color, shape in itertools.product(PROBE_COLORS, ("circle", "square", "triangle"))
    ]  # 12 shapes in 4 colours
    probe = Probe(
        name="colours",
        images=[render_scene(spec, rng=i) for i, spec in enumerate(specs)],
        targets=[PROBE_COLORS.index(spec.color) for spec in specs],
        labels=[f"{color} shape" for color in PROBE_COLORS],
    )
    correct = int((predict(encoder, probe) == torch.tensor(probe.targets)).sum())
    assert correct >= 10, f"named {correct} of 12 colours right"


@pytest.mark.parametrize("field", ["shape", "count"])
def test_beats_chance_on_shapes_and_counts(encoder, field):
    values = {"shape": ("circle", "square", "triangle", "star"), "count": (1, 2, 3, 4)}[field]
    labels = {"shape": list(values), "count": ["one shape", "two shapes", "three shapes", "four shapes"]}[field]
    specs = [SceneSpec(size="large", position="center", **{field: value}) for value in values for _ in range(6)]
    probe = Probe(
        name=field,
        images=[render_scene(spec, rng=i) for i, spec in enumerate(specs)],
        targets=[values.index(getattr(spec, field)) for spec in specs],
        labels=labels,
        template="This is a photo of a {}" if field == "shape" else "This is a photo of {}",
    )
    accuracy = float((predict(encoder, probe) == torch.tensor(probe.targets)).float().mean())
    assert accuracy > 0.5, f"{field}: {accuracy:.2f} (chance 0.25)"
