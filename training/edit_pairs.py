"""Pairs that differ in how the picture looks: one image at two strengths of one edit.

`pcclip pairs --pairing edits` draws, for each pair, a picture of a source, one kind of edit
(`EDIT_KINDS`: light, contrast, colour, focus, noise, compression, framing, tilt) and two of its
strengths far enough apart to see (one of them often the untouched picture), so the two images
differ in that alone. Each sample records `edit` and `level` (larger = more of the kind's
`more` words); the attribute describer states the comparison and its caption says how the
picture looks ("a blurry picture: …" where the level is far from untouched), so an LLM
describer can write it too.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from PIL import Image

from training import image_edits
from training.image_edits import fit, is_colourful
from training.sources.base import Sample


@dataclass(frozen=True)
class EditKind:
    """One way a picture can look more or less so, with the words for either side."""

    apply: Callable[[Image.Image, float, int], Image.Image]  # (picture, level, seed) -> edited
    levels: tuple[float, float]  # the range a level is drawn from; `untouched` lies in it
    untouched: float  # the level of the picture as it is
    min_gap: float  # two levels of a pair differ at least this much
    more: tuple[str, ...]  # comparatives for the larger level ("blurrier")
    less: tuple[str, ...]  # comparatives for the smaller level ("sharper")
    looks: tuple[str, str]  # caption adjective for a high level, for a low one ("" where unremarkable)
    colour_only: bool = False  # needs a colourful picture (saturation)


EDIT_KINDS: dict[str, EditKind] = {
    "brightness": EditKind(
        lambda im, x, _: image_edits.brightness(im, x), (0.3, 1.7), 1.0, 0.35,
        ("brighter", "lighter", "more brightly lit"), ("darker", "dimmer", "more dimly lit"),
        ("bright", "dark")),
    "contrast": EditKind(
        lambda im, x, _: image_edits.contrast(im, x), (0.2, 1.8), 1.0, 0.45,
        ("higher in contrast", "more contrasty", "punchier in contrast"),
        ("lower in contrast", "flatter", "more washed out"), ("high-contrast", "low-contrast")),
    "saturation": EditKind(
        lambda im, x, _: image_edits.saturation(im, x), (0.0, 2.0), 1.0, 0.5,
        ("more colourful", "more saturated", "more vivid"), ("less colourful", "more muted", "greyer"),
        ("vividly coloured", "washed-out, greyish"), colour_only=True),
    "sharpness": EditKind(
        lambda im, x, _: image_edits.blur(im, x), (0.0, 3.2), 0.0, 0.9,
        ("blurrier", "less sharp", "more out of focus"), ("sharper", "crisper", "more in focus"),
        ("blurry", "")),
    "noise": EditKind(
        lambda im, x, seed: image_edits.noise(im, x, seed), (0.0, 55.0), 0.0, 15.0,
        ("noisier", "grainier", "more speckled"), ("cleaner", "less noisy", "smoother"), ("grainy", "")),
    "compression": EditKind(  # level ln(100 / JPEG quality): 0 not compressed, 3.5 quality 3
        lambda im, x, _: image_edits.jpeg(im, max(1, round(100 * math.exp(-x)))), (0.0, 3.5), 0.0, 0.9,
        ("more heavily compressed", "blockier", "more pixelated by compression"),
        ("less compressed", "less blocky", "freer of compression artefacts"), ("blocky, compressed", "")),
    "zoom": EditKind(
        lambda im, x, _: image_edits.zoom(im, 1 / x), (1.0, 2.2), 1.0, 0.35,
        ("more zoomed in", "closer up", "more tightly framed"),
        ("more zoomed out", "wider in view", "more loosely framed"), ("close-up", "")),
    "rotation": EditKind(
        lambda im, x, seed: image_edits.rotate(im, x if seed % 2 else -x), (0.0, 50.0), 0.0, 15.0,
        ("more tilted", "more rotated", "more askew"), ("more upright", "straighter", "less tilted"),
        ("tilted", "")),
}


def edit_pairs(samples: Sequence[Sample], n: int, seed: int = 0, side: int = image_edits.INPUT_SIDE,
               kinds: Sequence[str] = tuple(EDIT_KINDS)) -> list[tuple[Sample, Sample]]:
    """`n` pairs, the kinds taken in turn; each edits one of `samples` (fitted to `side`) twice."""
    unknown = sorted(set(kinds) - set(EDIT_KINDS))
    if unknown or not kinds:
        raise ValueError(f"edit kinds are {', '.join(EDIT_KINDS)}; got {', '.join(unknown) or 'none'}")
    if not samples:
        raise ValueError("edit pairs need at least one picture")
    rng = random.Random(f"edit-pairs/{seed}")
    pairs: list[tuple[Sample, Sample]] = []
    for index in range(n):
        name = kinds[index % len(kinds)]
        pairs.append(_edit_pair(name, samples, rng, side, index))
    return pairs


def _edit_pair(
    name: str, samples: Sequence[Sample], rng: random.Random, side: int, index: int
) -> tuple[Sample, Sample]:
    kind = EDIT_KINDS[name]
    for _ in range(100):
        sample = rng.choice(samples)
        picture = fit(sample.image, side)
        if not kind.colour_only or is_colourful(picture):
            break
    else:
        raise ValueError(f"no colourful picture among the samples for {name!r} pairs")
    a, b = _two_levels(kind, rng)
    noise_seed = rng.randrange(1 << 32)  # one grain pattern for both sides: only its strength differs
    first = _edited(sample, picture, name, a, noise_seed, f"{index}:a")
    second = _edited(sample, picture, name, b, noise_seed, f"{index}:b")
    return first, second


def _two_levels(kind: EditKind, rng: random.Random) -> tuple[float, float]:
    """Two levels at least `min_gap` apart; half the time one is the untouched picture."""
    low, high = kind.levels
    while True:
        a = kind.untouched if rng.random() < 0.5 else rng.uniform(low, high)
        b = rng.uniform(low, high)
        if abs(a - b) >= kind.min_gap:
            return (a, b) if rng.random() < 0.5 else (b, a)


def _edited(sample: Sample, picture: Image.Image, name: str, level: float, seed: int, tag: str) -> Sample:
    kind = EDIT_KINDS[name]
    image = picture if level == kind.untouched else kind.apply(picture, level, seed)
    return dataclasses.replace(
        sample,
        image=image,
        caption=_looks_caption(kind, level, sample.caption),
        attributes={**sample.attributes, "edit": name, "level": round(level, 3)},
        uid=f"{sample.uid}:edit:{name}:{tag}",
    )


def _looks_caption(kind: EditKind, level: float, caption: str) -> str:
    """The caption with how the picture looks in front, where the level is far from untouched."""
    low, high = kind.levels
    span = high - low
    if level - kind.untouched > span / 3 and kind.looks[0]:
        look = kind.looks[0]
    elif kind.untouched - level > span / 3 and kind.looks[1]:
        look = kind.looks[1]
    else:
        return caption
    return f"a {look} picture: {caption}"


def edit_difference(first: Mapping, second: Mapping, rng: random.Random) -> str:
    """How the first picture differs from the second in their edit, in one of several wordings."""
    kind = EDIT_KINDS[str(first["edit"])]
    more = float(first["level"]) > float(second["level"])
    word = rng.choice(kind.more if more else kind.less)
    other = rng.choice(kind.less if more else kind.more)
    return rng.choice([
        f"the first image is {word} than the second",
        f"compared with the second image, the first is {word}",
        f"unlike the second, the first image is {word}",
        f"the second image is {other} than the first",
        f"the first picture looks {word} than the second one",
    ])
