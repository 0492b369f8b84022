"""The generalization suite's text-side checks: geometry on unseen templates, comparative prompting.

- Geometry: 1 − cos(normalize(f(A) − f(B)), f(c_AB)) (the paper's check, `geometry_check`), with
  class prompts in a template no training caption or probe used and c_AB in each naming of
  `wordings.SHOWS`; over colours, shapes, Fashion-MNIST classes and emoji groups (texts only,
  so nothing to install). The in-domain rows of the bundled suite are reported beside them.
- Comparative prompting on Fashion-MNIST, CryptoPunks types and emoji groups: each model's
  top-3 confusions get a comparative text written from one trait per class; both protocols of
  `paper.classification.comparative_protocols` at the authors' α = 0.8 — "all classes" (every
  image over every class, as the bundled suite scores it) and "subset" (the authors': only the
  confused classes' images, only those classes as candidate labels).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import torch

from models import geometry
from models.encoder import Encoder
from training.evaluation import wordings
from training.evaluation.comparative import FASHION_TRAITS, top_confusions, traits_comparative
from training.evaluation.difference import mean_and_error
from training.evaluation.geometry_check import class_pairs, distances
from training.evaluation.object_kinds import EMOJI_CATEGORIES
from training.evaluation.paper.classification import ALPHA, CONFUSIONS, comparative_protocols
from training.evaluation.probes import source_probe
from training.evaluation.zero_shot import Probe

UNSEEN_PROMPT = "An image in which one sees {}."
PUNK_TRAITS = {
    "alien": "an alien has pale blue-green skin and no hair on its head",
    "ape": "an ape has dark brown fur over its whole face",
    "zombie": "a zombie has green-grey skin and red eyes",
    "female": "a woman has a narrow face, often long hair and lipstick",
    "male": "a man has a wide face, often short hair, a beard or a cap",
}
EMOJI_TRAITS = {
    "Smileys & Emotion": "a smiley is a round yellow face showing a feeling",
    "People & Body": "a people emoji shows a human figure, a hand or a body part",
    "Animals & Nature": "a nature emoji shows an animal, a flower or a plant",
    "Food & Drink": "a food emoji shows something to eat or to drink",
    "Travel & Places": "a travel emoji shows a vehicle, a building or a landscape",
    "Activities": "an activity emoji shows a ball, a game or a party item",
    "Objects": "an object emoji shows a tool, a device or a piece of clothing",
    "Symbols": "a symbol emoji is a sign, an arrow, a letter or a coloured shape",
    "Flags": "a flag emoji is a rectangular flag with stripes or an emblem",
}


def geometry_sets(sources: Collection[str] | None = None) -> dict[str, list[tuple[str, str, str]]]:
    """Per set of classes: (prompt A, prompt B, c_AB) over every ordered pair and every naming. Colours
    and shapes always; a source's classes when `sources` (default: all) names it."""
    from training.sources.fashion_mnist import FASHION_NOUNS

    classes = {
        "colours": [f"something {c}" for c in ("red", "green", "blue", "yellow", "orange", "purple")],
        "shapes": ["a circle", "a square", "a triangle", "a star"],
    }
    if sources is None or "fashion-mnist" in sources:
        classes["fashion-mnist classes"] = list(FASHION_NOUNS)
    if sources is None or "emoji" in sources:
        classes["emoji groups"] = list(EMOJI_CATEGORIES.values())
    return {
        name: [
            (UNSEEN_PROMPT.format(a), UNSEEN_PROMPT.format(b), wordings.sentence(template, {"a": a, "b": b}))
            for a, b in itertools.permutations(phrases, 2)
            for template in wordings.SHOWS
        ]
        for name, phrases in classes.items()
    }


def _distance(encoder: Encoder, rows: Sequence[tuple[str, str, str]]) -> dict[str, float]:
    texts = list(dict.fromkeys(text for row in rows for text in row))  # class prompts recur: encode each once
    embedded = dict(zip(texts, encoder.encode_texts(texts), strict=True))
    a, b, c = (torch.stack([embedded[row[i]] for row in rows]) for i in range(3))  # (K, D) each
    mean, error = mean_and_error(distances(a, b, c).tolist())
    return {"distance": mean, "stderr": error, "pairs": len(rows)}


def unseen_geometry(
    encoders: Mapping[str, Encoder], sources: Collection[str] | None = None
) -> dict[str, dict[str, dict[str, float]]]:
    """{set: {who: distance ± s.e.}}; "in-domain (bundled suite)" is the training-like template."""
    sets = {**geometry_sets(sources), "in-domain (bundled suite)": class_pairs()}
    return {name: {who: _distance(encoder, rows) for who, encoder in encoders.items()} for name, rows in sets.items()}


def comparative_probes(
    sources: Collection[str] | None = None,
) -> tuple[list[tuple[Probe, Callable[[int, int], str]]], dict[str, str]]:
    """(probe, text for confused pair (true, predicted)) per data set of `sources` (default: all) that is
    installed; and {name: why skipped} for the others."""
    from training.sources.cpunks import PUNK_TYPES, TYPE_PHRASES
    from training.sources.fashion_mnist import FASHION_CLASSES, FASHION_NOUNS

    emoji_groups = tuple(EMOJI_CATEGORIES)
    specs = [
        ("fashion-mnist (10)", "fashion-mnist", "label", FASHION_CLASSES, FASHION_NOUNS, FASHION_TRAITS, 1000),
        ("cpunks type (5)", "cpunks", "type", PUNK_TYPES, [TYPE_PHRASES[t] for t in PUNK_TYPES], PUNK_TRAITS, 1000),
        ("emoji group (9)", "emoji", "category", emoji_groups, list(EMOJI_CATEGORIES.values()), EMOJI_TRAITS, None),
    ]
    probes, skipped = [], {}
    for name, source, attribute, values, labels, traits, limit in specs:
        if sources is not None and source not in sources:
            continue
        try:
            probe = source_probe(
                name, source, attribute, values, labels, limit=limit or 10_000, seed=0, template="This is a photo of {}"
            )
        except FileNotFoundError as error:
            skipped[f"comparative: {name}"] = f"comparative {name}: skipped, {error}"
            continue
        probes.append((probe, _by_index(values, traits)))
    return probes, skipped


def _by_index(values: Sequence[str], traits: Mapping[str, str]) -> Callable[[int, int], str]:
    """The comparative text for confused classes given by their indices into `values`."""
    return lambda a, b: traits_comparative(traits, values[a], values[b])


def comparative_on(encoders: Mapping[str, Encoder], probe: Probe, text: Callable[[int, int], str]) -> dict[str, Any]:
    """Per model: its top confusions on `probe`, their texts, and both protocols before/after."""
    targets = torch.as_tensor(probe.targets)
    towers: dict[str, torch.Tensor] = {}
    out: dict[str, Any] = {"images": len(probe.targets), "classes": len(probe.labels)}
    for who, encoder in encoders.items():
        if encoder.image_identity not in towers:
            towers[encoder.image_identity] = encoder.encode_images(probe.images)  # (N, D)
        images, prototypes = towers[encoder.image_identity], encoder.encode_texts(probe.prompts)  # (N, D), (C, D)
        confusions = top_confusions(geometry.similarity(images, prototypes).argmax(dim=1), probe.targets, CONFUSIONS)
        if not confusions:
            out[who] = {"skipped": "no confusions: every image is classified right"}
            continue
        texts = [text(a, b) for a, b in confusions]
        rows = comparative_protocols(
            images, prototypes, targets, torch.tensor(confusions).reshape(-1, 2), encoder.encode_texts(texts), ALPHA
        )
        out[who] = {
            "confusions": [
                {"true": probe.labels[a], "predicted": probe.labels[b], "text": t}
                for (a, b), t in zip(confusions, texts, strict=True)
            ],
            **rows,
        }
    return out


def comparative_both_protocols(
    encoders: Mapping[str, Encoder],
    sources: Collection[str] | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """{probe name: comparative_on(...)}, plus "skipped": {name: why} for data sets not installed."""
    probes, skipped = comparative_probes(sources)
    for message in skipped.values():
        progress(message)
    results: dict[str, Any] = {}
    for probe, text in probes:
        progress(f"comparative prompting: {probe.name}")
        results[probe.name] = comparative_on(encoders, probe, text)
    return {**results, "skipped": skipped}
