"""The paper's four difference-classification tasks on its data sets (PAPER.md).

Protocol (the authors'): per seed, sample 100 test images; every sampled pair that differs in
the task's known way is scored, here in both orders, each order with the text for that order;
s = cos(f(text), normalize(ĝ(I₁) − ĝ(I₂))), correct iff s > 0 (chance 50%); mean over 5
seeds ± standard error. All models see the same pairs.

- AwA2 attributes: pairs of different classes; the text lists the visual attributes only the
  first class has and only the second has (`attribute_text`).
- CIFAR-100 size: a large-animal class against a small-animal class (cifar100_size.json).
- Flowers-102 colour: a blue flower against a yellow one (flowers102_colour.json).
- CUB: one Reed et al. caption per image; the LLM writes how the first bird differs from the
  second (`texts.DifferenceTexts`); pairs without a usable text are left out.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models import geometry
from training.evaluation.difference import mean_and_error
from training.evaluation.paper.animals import load_awa2, non_visual_predicates
from training.evaluation.paper.birds import load_cub
from training.evaluation.paper.cifar import load_cifar100, size_groups
from training.evaluation.paper.datasets import LabeledImages
from training.evaluation.paper.embeddings import Embedder
from training.evaluation.paper.flowers import colour_groups, load_flowers102
from training.evaluation.paper.texts import DifferenceTexts

CUB_PAIRS_PER_SEED = 100  # the LLM writes two texts per pair (both orders): 1,000 texts for 5 seeds

# The authors' texts for the two-group tasks (their CIFAR "whiel" typo corrected), by (first, second) group.
SIZE_TEXTS = {
    ("large", "small"): "The first image contains a larger animal, while the second contains a smaller animal.",
    ("small", "large"): "The first image contains a smaller animal, while the second contains a larger animal.",
}
COLOUR_TEXTS = {
    ("blue", "yellow"): "The first flower is blue, while the second is yellow.",
    ("yellow", "blue"): "The first flower is yellow, while the second is blue.",
}


@dataclass(frozen=True)
class Scored:
    """An ordered pair of positions into one data set and the text saying how `first` differs."""

    first: int
    second: int
    text: str


Builder = Callable[[random.Random], list[Scored]]  # one seed's pairs


def sample(pool: Sequence[int], rng: random.Random, n: int) -> list[int]:
    return sorted(rng.sample(list(pool), min(n, len(pool))))


def group_pairs(labels: Sequence[int], positions: Sequence[int], groups: Mapping[str, Sequence[int]],
                texts: Mapping[tuple[str, str], str]) -> list[Scored]:
    """Every pair of `positions` whose labels fall in two different groups, in both orders."""
    group_of = {label: name for name, members in groups.items() for label in members}
    pairs = []
    for i, j in itertools.combinations(positions, 2):
        a, b = group_of.get(labels[i]), group_of.get(labels[j])
        if a is not None and b is not None and a != b:
            pairs += [Scored(i, j, texts[(a, b)]), Scored(j, i, texts[(b, a)])]
    return pairs


def attribute_text(matrix: np.ndarray, predicates: Sequence[str], first: int, second: int,
                   skip: frozenset[str] = frozenset()) -> str | None:
    """The authors' AwA2 template over the attributes only `first`'s class has and only
    `second`'s has (matrix (classes, attributes) bool); None unless both lists are non-empty."""
    only = [[name for column, name in enumerate(predicates)
             if matrix[a, column] and not matrix[b, column] and name not in skip] for a, b in ((first, second),
                                                                                               (second, first))]
    if not all(only):
        return None
    return f"The first image has attributes of {', '.join(only[0])}, while the second image has attributes of " \
           f"{', '.join(only[1])}"


def awa2_task(root: Path, texts: DifferenceTexts, n: int) -> tuple[LabeledImages, Builder]:
    animals = load_awa2(root)
    skip, labels = non_visual_predicates(), animals.images.labels

    def build(rng: random.Random) -> list[Scored]:
        pairs = []
        for i, j in itertools.combinations(sample(range(len(labels)), rng, n), 2):
            for a, b in ((i, j), (j, i)):
                text = attribute_text(animals.matrix, animals.predicates, labels[a], labels[b], skip)
                if labels[a] != labels[b] and text:
                    pairs.append(Scored(a, b, text))
        return pairs

    return animals.images, build


def _two_group_task(data: LabeledImages, groups: dict[str, list[int]], texts: Mapping, n: int) -> tuple[LabeledImages,
                                                                                                  Builder]:
    members = {label for labels in groups.values() for label in labels}
    pool = [i for i, label in enumerate(data.labels) if label in members]
    return data, lambda rng: group_pairs(data.labels, sample(pool, rng, n), groups, texts)


def cifar_size_task(root: Path, texts: DifferenceTexts, n: int) -> tuple[LabeledImages, Builder]:
    data = load_cifar100(root, "test")
    return _two_group_task(data, size_groups(data.classes), SIZE_TEXTS, n)


def flowers_colour_task(root: Path, texts: DifferenceTexts, n: int) -> tuple[LabeledImages, Builder]:
    data = load_flowers102(root, "test")
    return _two_group_task(data, colour_groups(data.classes), COLOUR_TEXTS, n)


def cub_task(root: Path, texts: DifferenceTexts, n: int) -> tuple[LabeledImages, Builder]:
    data = load_cub(root, "test", captions=True)

    def build(rng: random.Random) -> list[Scored]:
        positions = sample(range(len(data)), rng, n)
        caption = {i: rng.choice(data.captions[i]) for i in positions}
        pairs = [(i, j) for i, j in itertools.combinations(positions, 2) if data.labels[i] != data.labels[j]]
        pairs = rng.sample(pairs, min(CUB_PAIRS_PER_SEED, len(pairs)))
        ordered = [pair for i, j in pairs for pair in ((i, j), (j, i))]
        written = texts.get([(caption[i], caption[j]) for i, j in ordered], source="cub")
        return [Scored(i, j, text) for (i, j), text in zip(ordered, written, strict=True) if text]

    return data, build


# name -> (data root, LLM texts, images per seed) -> (the test images, one seed's pair builder)
TASKS: dict[str, Callable[[Path, DifferenceTexts, int], tuple[LabeledImages, Builder]]] = {
    "AwA2 attributes": awa2_task,
    "CIFAR-100 size": cifar_size_task,
    "Flowers-102 colour": flowers_colour_task,
    "CUB (LLM-written)": cub_task,
}


def pair_scores(pairs: Sequence[Scored], images: torch.Tensor, rows: Mapping[int, int], texts: torch.Tensor,
                columns: Mapping[str, int]) -> torch.Tensor:
    """s per pair: cos(f(text), normalize(ĝ(I₁) − ĝ(I₂))). images (N, D) with `rows` mapping a
    data-set position to its row; texts (T, D) with `columns` mapping a text to its row.  -> (P,)"""
    firsts = images[[rows[p.first] for p in pairs]]  # (P, D)
    seconds = images[[rows[p.second] for p in pairs]]  # (P, D)
    return (geometry.differences(firsts, seconds) * geometry.normalize(texts[[columns[p.text] for p in pairs]])).sum(1)


def pair_accuracy(embedder: Embedder, data: LabeledImages, pairs: Sequence[Scored]) -> float:
    """Share of pairs whose text points along their image difference (s > 0)."""
    positions = sorted({p.first for p in pairs} | {p.second for p in pairs})
    unique = list(dict.fromkeys(p.text for p in pairs))
    scores = pair_scores(pairs, embedder.images(data, positions), {pos: k for k, pos in enumerate(positions)},
                         embedder.texts(unique), {text: k for k, text in enumerate(unique)})
    return (scores > 0).float().mean().item()


def run_task(name: str, data: LabeledImages, build: Builder, embedders: Mapping[str, Embedder],
             seeds: Sequence[int]) -> dict[str, object]:
    """{model name: {"accuracy", "stderr", "per_seed"}, "pairs_per_seed": [...]} over `seeds`."""
    per_model: dict[str, list[float]] = {model: [] for model in embedders}
    counts = []
    for seed in seeds:
        pairs = build(random.Random(f"{name}/{seed}"))
        if not pairs:
            raise ValueError(f"{name}: seed {seed} drew no pair that differs in the task's way")
        counts.append(len(pairs))
        for model, embedder in embedders.items():
            per_model[model].append(pair_accuracy(embedder, data, pairs))
    result: dict[str, object] = {"pairs_per_seed": counts}
    for model, accuracies in per_model.items():
        mean, error = mean_and_error(accuracies)
        result[model] = {"accuracy": mean, "stderr": error, "per_seed": accuracies}
    return result
