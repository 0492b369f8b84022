"""Difference-based classification (PAPER.md, "Evaluation tasks").

A task yields pairs (I₁, I₂) that differ in one known way and a text stating that difference
in order. Score s = cos(normalize(f(T)), normalize(ĝ(I₁) − ĝ(I₂))); the pair is correct iff
s > 0, so chance is 50%. Each seed draws its own images and presents every pair in a random
order (the text follows the order); the task's accuracy is the mean over seeds ± standard
error. All images are held out: "test" splits and freshly drawn scenes.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from models import geometry
from models.encoder import Encoder
from training.pairs import read_pairs
from training.sources.base import Sample, load_source, open_rgb
from training.sources.scenes import COLORS, POSITION_PHRASES, SceneSpec, render_scene, sample_scene_spec


@dataclass(frozen=True)
class DifferencePair:
    first: Image.Image
    second: Image.Image
    text: str  # states how `first` differs from `second`


# A task draws `n` ordered pairs from an rng.
Task = Callable[[random.Random, int], list[DifferencePair]]


def _scene_task(vary: Callable[[SceneSpec, random.Random], tuple[SceneSpec, SceneSpec, str]]) -> Task:
    """Pairs of drawn scenes that share everything but what `vary` changes."""

    def draw(rng: random.Random, n: int) -> list[DifferencePair]:
        pairs = []
        for _ in range(n):
            first, second, text = vary(sample_scene_spec(rng), rng)
            layout = rng.randrange(1 << 30)  # same layout where the varied fact allows it
            pairs.append(DifferencePair(render_scene(first, rng=layout), render_scene(second, rng=layout), text))
        return pairs

    return draw


def _size(spec: SceneSpec, rng: random.Random):
    large, small = dataclasses.replace(spec, size="large"), dataclasses.replace(spec, size="small")
    if rng.random() < 0.5:
        return large, small, "The first image contains larger objects, while the second contains smaller objects."
    return small, large, "The first image contains smaller objects, while the second contains larger objects."


def _colour(spec: SceneSpec, rng: random.Random):
    a, b = rng.sample(["blue", "yellow", "red", "green"], 2)
    return (dataclasses.replace(spec, color=a), dataclasses.replace(spec, color=b),
            f"The first image shows {a} objects, while the second shows {b} objects.")


def _count(spec: SceneSpec, rng: random.Random):
    a, b = rng.sample([1, 2, 3, 4], 2)
    word = "more" if a > b else "fewer"
    return (dataclasses.replace(spec, count=a), dataclasses.replace(spec, count=b),
            f"The first image contains {word} objects than the second image.")


def _position(spec: SceneSpec, rng: random.Random):
    a, b = rng.sample(["left", "right", "top", "bottom"], 2)
    return (dataclasses.replace(spec, position=a), dataclasses.replace(spec, position=b),
            f"In the first image the objects are {POSITION_PHRASES[a]}, while in the second they are "
            f"{POSITION_PHRASES[b]}.")


def _brightness(spec: SceneSpec, rng: random.Random):
    spec = dataclasses.replace(spec, color=rng.choice([c for c in COLORS if c not in ("black", "white")]))
    dark, light = dataclasses.replace(spec, background="dark"), dataclasses.replace(spec, background="light")
    if rng.random() < 0.5:
        return dark, light, "The first image is darker than the second image."
    return light, dark, "The first image is brighter than the second image."


def _attribute_list(names: Sequence[str]) -> str:
    from training.sources.cpunks import accessory_phrase

    return ", ".join(accessory_phrase(name) for name in names) or "nothing"


@functools.cache
def _accessorized_test_punks() -> tuple[Sample, ...]:
    """The held-out CryptoPunks with accessories, decoded once (not once per seed)."""
    return tuple(s for s in load_source("cpunks", split="test") if s.attributes["accessories"])


def _punk_attributes(rng: random.Random, n: int) -> list[DifferencePair]:
    """The AwA2 analog: held-out portraits whose accessories differ, listed per image."""
    samples = _accessorized_test_punks()
    pairs: list[DifferencePair] = []
    while len(pairs) < n:
        a, b = rng.sample(samples, 2)
        accessories_a, accessories_b = accessories(a), accessories(b)
        only_a, only_b = sorted(accessories_a - accessories_b), sorted(accessories_b - accessories_a)
        if only_a and only_b:
            pairs.append(DifferencePair(a.image, b.image,
                                        f"The first image has attributes of {_attribute_list(only_a)}, while the "
                                        f"second image has attributes of {_attribute_list(only_b)}."))
    return pairs


def accessories(sample: Sample) -> set[str]:
    listed = sample.attributes["accessories"]
    if not isinstance(listed, list | tuple):
        raise ValueError(f"{sample.uid}: accessories should be a list, got {type(listed).__name__}")
    return {str(name) for name in listed}


LLM_PAIRS = Path(__file__).parent / "data" / "llm_scene_pairs" / "pairs.jsonl"


def _llm_written(rng: random.Random, n: int) -> list[DifferencePair]:
    """The CUB analog: held-out scene pairs whose differences SmolLM2 wrote from the two captions.

    Shipped as a fixed file (written once by `pcclip pairs --split test --describer local`,
    filtered with the direction check), so evaluation needs no LLM. The texts are the LLM's:
    some state wrong facts, which caps what any model can score here.
    """
    records = read_pairs(LLM_PAIRS)
    chosen = rng.sample(records, min(n, len(records)))
    pairs = []
    for record in chosen:
        first, second = record.paths(LLM_PAIRS.parent)
        pairs.append(DifferencePair(open_rgb(first), open_rgb(second), record.text))
    return pairs


TASKS: dict[str, Task] = {
    "attributes (cpunks)": _punk_attributes,
    "size": _scene_task(_size),
    "colour": _scene_task(_colour),
    "count": _scene_task(_count),
    "position": _scene_task(_position),
    "brightness": _scene_task(_brightness),
    "LLM-written (scenes)": _llm_written,
}


def pair_scores(encoder: Encoder, pairs: Sequence[DifferencePair]) -> torch.Tensor:
    """s per pair: cosine of its text with its normalized image difference.  -> (P,)"""
    firsts = encoder.encode_images([pair.first for pair in pairs])
    seconds = encoder.encode_images([pair.second for pair in pairs])
    texts = encoder.encode_texts([pair.text for pair in pairs])
    return (geometry.differences(firsts, seconds) * texts).sum(dim=1)


def mean_and_error(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean."""
    mean = statistics.fmean(values)
    error = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return mean, error


def evaluate_differences(
    encoders: dict[str, Encoder], *, seeds: Sequence[int] = (0, 1, 2, 3, 4), pairs_per_seed: int = 100,
    tasks: dict[str, Task] | None = None, progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """{task: {model: {"accuracy", "stderr", "per_seed"...}}}; every model sees the same pairs."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for task_name, draw in (tasks or TASKS).items():
        per_model: dict[str, list[float]] = {name: [] for name in encoders}
        for seed in seeds:
            pairs = draw(random.Random(f"{task_name}/{seed}"), pairs_per_seed)
            for name, encoder in encoders.items():
                per_model[name].append((pair_scores(encoder, pairs) > 0).float().mean().item())
            if progress:
                progress(f"{task_name} seed {seed}")
        results[task_name] = {}
        for name, accuracies in per_model.items():
            mean, error = mean_and_error(accuracies)
            results[task_name][name] = {"accuracy": mean, "stderr": error, "per_seed": accuracies}
    return results
