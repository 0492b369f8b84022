"""Kinds of difference about objects, each defined on the sources whose labels make it exact.

- emoji (no model saw them): count, size, position and presence by composing emoji on a white
  canvas; colour from emoji whose names differ in one colour word ("blue heart" / "green
  heart"); skin tone from the skin-tone variants of one emoji; category from Unicode's groups.
- scenes (drawn; the finetune's own generator, held-out draws): colour, size, count, position.
- cpunks: presence (two held-out punks of one type whose accessories differ by exactly one) and
  category (the punk's type).
- fashion-mnist: category (the item's class).

Each `prepare_*` indexes a pool once and returns a drawer (see `kinds.Kind`).
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from PIL import Image

from training.evaluation import wordings
from training.evaluation.difference import accessories
from training.evaluation.kinds import Comparison, Drawer, Kind, swap_maybe
from training.image_edits import INPUT_SIDE, fit
from training.sources.base import Sample
from training.sources.scenes import SceneSpec, render_scene, sample_scene_spec

COLOUR_WORDS = ("red", "orange", "yellow", "green", "blue", "purple", "brown", "black", "white")
SKIN_TONES = ("light", "medium-light", "medium", "medium-dark", "dark")  # lightest first
EMOJI_CATEGORIES = {  # Unicode's emoji groups as a noun phrase
    "Smileys & Emotion": "a face showing a feeling",
    "People & Body": "a person or a body part",
    "Animals & Nature": "an animal or a plant",
    "Food & Drink": "food or drink",
    "Travel & Places": "a place or a vehicle",
    "Activities": "a sport, a game or a celebration",
    "Objects": "an everyday object",
    "Symbols": "a symbol or a sign",
    "Flags": "a flag",
}
CANVAS = (255, 255, 255)  # emoji are composited on white, so sprites paste without a visible box


def _canvas(sprites: Sequence[tuple[Image.Image, int, int]]) -> Image.Image:
    """A white input-sized picture with each (sprite, x, y) pasted at its top-left corner."""
    canvas = Image.new("RGB", (INPUT_SIDE, INPUT_SIDE), CANVAS)
    for sprite, x, y in sprites:
        canvas.paste(sprite, (x, y))
    return canvas


def _cells(rng: random.Random, count: int, grid: int, sprite: int) -> list[tuple[int, int]]:
    """Top-left corners of `count` sprites in distinct cells of a grid x grid layout, jittered in their cell."""
    cell = INPUT_SIDE // grid
    corners = []
    for index in rng.sample(range(grid * grid), count):
        row, column = divmod(index, grid)
        corners.append((column * cell + rng.randint(0, cell - sprite), row * cell + rng.randint(0, cell - sprite)))
    return corners


def _plain(pool: Sequence[Sample]) -> list[Sample]:
    """Emoji fit for composing and naming: no skin-tone variant, no flag, no comma in the name."""
    return [
        s
        for s in pool
        if s.attributes.get("skin_tone") is None
        and s.attributes.get("category") != "Flags"
        and "," not in str(s.attributes["name"])
    ]


def _article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def prepare_emoji_count(pool: Sequence[Sample]) -> Drawer:
    plain = _plain(pool)

    def draw(rng: random.Random) -> Comparison:
        emoji = rng.choice(plain)
        sprite = fit(emoji.image, 17)
        a, b = rng.sample((1, 2, 3, 4), 2)
        first, second = (_canvas([(sprite, x, y) for x, y in _cells(rng, n, 3, 17)]) for n in (a, b))
        more, fewer = ("more", "fewer") if a > b else ("fewer", "more")
        things = f"copies of the {emoji.attributes['name']}"
        texts = wordings.comparative(rng, more, fewer, wordings.COUNT, things=things)
        return Comparison(first, second, *texts)

    return draw


def prepare_emoji_size(pool: Sequence[Sample]) -> Drawer:
    plain = _plain(pool)

    def draw(rng: random.Random) -> Comparison:
        emoji = rng.choice(plain)
        cx, cy = rng.randint(22, 42), rng.randint(22, 42)  # one centre: only the size changes
        big, small = ((_canvas([(fit(emoji.image, side), cx - side // 2, cy - side // 2)])) for side in (44, 22))
        texts = wordings.comparative(rng, "bigger", "smaller", wordings.SIZE, noun=str(emoji.attributes["name"]))
        return swap_maybe(Comparison(big, small, *texts), rng)

    return draw


# position -> ranges of the sprite's top-left x and y (a 24-pixel sprite on the 64-pixel canvas)
PLACES = {
    "left": ((0, 8), (12, 28)),
    "right": ((32, 40), (12, 28)),
    "top": ((12, 28), (0, 8)),
    "bottom": ((12, 28), (32, 40)),
}


def prepare_emoji_position(pool: Sequence[Sample]) -> Drawer:
    plain = _plain(pool)

    def draw(rng: random.Random) -> Comparison:
        emoji = rng.choice(plain)
        sprite = fit(emoji.image, 24)
        a, b = rng.sample(sorted(PLACES), 2)
        first, second = (_canvas([(sprite, rng.randint(*PLACES[p][0]), rng.randint(*PLACES[p][1]))]) for p in (a, b))
        texts = wordings.contrast(
            rng,
            wordings.POSITION_WORDS[a],
            wordings.POSITION_WORDS[b],
            wordings.POSITION,
            noun=str(emoji.attributes["name"]),
        )
        return Comparison(first, second, *texts)

    return draw


def prepare_emoji_presence(pool: Sequence[Sample]) -> Drawer:
    plain = _plain(pool)

    def draw(rng: random.Random) -> Comparison:
        kept, extra = rng.sample(plain, 2)
        (kx, ky), (ex, ey) = _cells(rng, 2, 2, 26)
        with_both = _canvas([(fit(kept.image, 26), kx, ky), (fit(extra.image, 26), ex, ey)])
        alone = _canvas([(fit(kept.image, 26), kx, ky)])
        texts = wordings.presence(rng, _article(str(extra.attributes["name"])))
        return swap_maybe(Comparison(with_both, alone, *texts), rng)

    return draw


def colour_groups(pool: Sequence[Sample]) -> dict[str, list[tuple[str, Sample]]]:
    """Emoji whose names are equal but for one colour word: {"large * circle": [("red", sample), ...]}."""
    groups: dict[str, list[tuple[str, Sample]]] = defaultdict(list)
    for sample in _plain(pool):
        words = str(sample.attributes["name"]).split()
        for i, word in enumerate(words):
            if word in COLOUR_WORDS:
                groups[" ".join([*words[:i], "*", *words[i + 1 :]])].append((word, sample))
    return {pattern: members for pattern, members in groups.items() if len(members) > 1}


def prepare_emoji_colour(pool: Sequence[Sample]) -> Drawer:
    groups = colour_groups(pool)
    patterns = sorted(groups)

    def draw(rng: random.Random) -> Comparison | None:
        if not patterns:
            return None
        pattern = rng.choice(patterns)
        (a, first), (b, second) = rng.sample(groups[pattern], 2)
        noun = " ".join(word for word in pattern.split() if word != "*")
        texts = wordings.contrast(rng, a, b, wordings.COLOUR, noun=noun)
        return Comparison(fit(first.image), fit(second.image), *texts)

    return draw


def prepare_emoji_skin_tone(pool: Sequence[Sample]) -> Drawer:
    by_emoji: dict[str, dict[str, Sample]] = defaultdict(dict)
    for sample in pool:
        if sample.attributes.get("skin_tone") in SKIN_TONES:
            by_emoji[str(sample.attributes["base"])][str(sample.attributes["skin_tone"])] = sample
    bases = sorted(base for base, tones in by_emoji.items() if len(tones) > 1)

    def draw(rng: random.Random) -> Comparison | None:
        if not bases:
            return None
        tones = by_emoji[rng.choice(bases)]
        lighter, darker = sorted(rng.sample(sorted(tones), 2), key=SKIN_TONES.index)
        texts = wordings.comparative(rng, "darker", "lighter", wordings.SKIN)
        return swap_maybe(Comparison(fit(tones[darker].image), fit(tones[lighter].image), *texts), rng)

    return draw


def prepare_category(attribute: str, phrases: dict[str, str]) -> Kind:
    """Two pooled pictures whose `attribute` differs (each value equally likely), stated with `phrases`."""

    def prepare(pool: Sequence[Sample]) -> Drawer:
        by_value: dict[str, list[Sample]] = defaultdict(list)
        for sample in pool:
            by_value[str(sample.attributes[attribute])].append(sample)
        values = sorted(value for value in by_value if value in phrases)

        def draw(rng: random.Random) -> Comparison | None:
            if len(values) < 2:
                return None
            a, b = rng.sample(values, 2)
            first, second = rng.choice(by_value[a]), rng.choice(by_value[b])
            return Comparison(fit(first.image), fit(second.image), *wordings.contrast(rng, phrases[a], phrases[b]))

        return draw

    return prepare


def prepare_punk_presence(pool: Sequence[Sample]) -> Drawer:
    """Punks of one type whose accessories differ by exactly one, found once over the pool."""
    from training.sources.cpunks import accessory_phrase

    by_look: dict[tuple[str, frozenset[str]], list[Sample]] = defaultdict(list)
    for sample in pool:
        by_look[(str(sample.attributes["type"]), frozenset(accessories(sample)))].append(sample)
    triples = [
        (sample, other, extra)
        for (kind, look), samples in sorted(by_look.items(), key=str)
        for sample in samples
        for extra in sorted(look)
        for other in by_look.get((kind, look - {extra}), [])
    ]

    def draw(rng: random.Random) -> Comparison | None:
        if not triples:
            return None
        wearer, other, extra = rng.choice(triples)
        texts = wordings.presence(rng, accessory_phrase(extra))
        return swap_maybe(Comparison(fit(wearer.image), fit(other.image), *texts), rng)

    return draw


def _scene_kind(field: str, values: Sequence[object]) -> Kind:
    """Fresh held-out scenes (one object unless counting) that differ in `field` alone, same layout seed."""

    def prepare(pool: Sequence[Sample]) -> Drawer:
        def draw(rng: random.Random) -> Comparison:
            spec = dataclasses.replace(sample_scene_spec(rng), count=1)
            a, b = rng.sample(list(values), 2)
            layout = rng.randrange(1 << 30)
            first, second = (render_scene(_with(spec, field, v), rng=layout) for v in (a, b))
            return Comparison(first, second, *_scene_texts(field, spec, a, b, rng))

        return draw

    return prepare


def _with(spec: SceneSpec, field: str, value: Any) -> SceneSpec:
    return dataclasses.replace(spec, **{field: value})


def _scene_texts(field: str, spec: SceneSpec, a: object, b: object, rng: random.Random) -> tuple[str, str]:
    if field == "color":
        return wordings.contrast(rng, str(a), str(b), wordings.COLOUR, noun=spec.shape)
    if field == "size":
        more, less = ("bigger", "smaller") if a == "large" else ("smaller", "bigger")
        return wordings.comparative(rng, more, less, wordings.SIZE, noun=spec.shape)
    if field == "count":
        more, less = ("more", "fewer") if int(str(a)) > int(str(b)) else ("fewer", "more")
        return wordings.comparative(rng, more, less, wordings.COUNT, things=f"{spec.shape}s")
    words = wordings.POSITION_WORDS
    return wordings.contrast(rng, words[str(a)], words[str(b)], wordings.POSITION, noun=spec.shape)


SCENE_KINDS: dict[str, Kind] = {
    "colour": _scene_kind("color", ("red", "orange", "yellow", "green", "blue", "purple")),
    "size": _scene_kind("size", ("small", "large")),
    "count": _scene_kind("count", (1, 2, 3, 4)),
    "position": _scene_kind("position", tuple(wordings.POSITION_WORDS)),
}


def punk_kinds() -> dict[str, Kind]:
    from training.sources.cpunks import TYPE_PHRASES

    return {"presence": prepare_punk_presence, "category": prepare_category("type", TYPE_PHRASES)}


def fashion_kinds() -> dict[str, Kind]:
    from training.sources.fashion_mnist import FASHION_CLASSES, FASHION_NOUNS

    return {"category": prepare_category("label", dict(zip(FASHION_CLASSES, FASHION_NOUNS, strict=True)))}


EMOJI_KINDS: dict[str, Kind] = {
    "colour": prepare_emoji_colour,
    "size": prepare_emoji_size,
    "count": prepare_emoji_count,
    "position": prepare_emoji_position,
    "presence": prepare_emoji_presence,
    "skin tone": prepare_emoji_skin_tone,
    "category": prepare_category("category", EMOJI_CATEGORIES),
}
