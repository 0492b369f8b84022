"""Procedurally drawn scenes: identical shapes on a plain background, with exact captions.

A `SceneSpec` states every fact of a scene (shape, color, size, count, position,
background); `render_scene` draws it so that each fact holds at pixel level:
- all objects share one shape, one color (jittered by at most +-10 per channel) and one
  size; "large" objects are twice as wide as "small" ones (four times the area);
- every object lies inside its position's region ("left" = the left half minus its top and
  bottom 10%, "top" = the top half minus its left and right 10%, "center" = the middle 60%
  box), and objects never touch, so the number of connected blobs equals `count`;
- light backgrounds are grey 195-215, dark ones grey 40-60: white objects stay visible on
  light backgrounds and black ones on dark backgrounds.

Controlled variants for evaluation: `dataclasses.replace(spec, color="blue")` rendered with
the same seed gives the same layout with only the color changed (the same holds for
`background`); changing size, count or position draws a new layout that still obeys the
rules above.

Splits: sample i of a split is drawn from its own rng seeded by (split, seed, i), so train
and test are independent draws. Specs recur (there are 2,560 of them) but layouts and
jitter do not.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from training.sources.base import Sample

SHAPES = ("circle", "square", "triangle", "star")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (245, 215, 30),
    "green": (40, 165, 50),
    "blue": (35, 75, 225),
    "purple": (140, 50, 190),
    "black": (5, 5, 5),
    "white": (250, 250, 250),
}
SIZES: dict[str, float] = {"small": 0.1, "large": 0.2}  # object width / image width
# Region of each position as fractions of the image: (x0, y0, x1, y1), end exclusive.
# Side regions keep off the far corners so that "left" scenes do not also read as "top".
POSITIONS: dict[str, tuple[float, float, float, float]] = {
    "left": (0.0, 0.1, 0.5, 0.9),
    "right": (0.5, 0.1, 1.0, 0.9),
    "top": (0.1, 0.0, 0.9, 0.5),
    "bottom": (0.1, 0.5, 0.9, 1.0),
    "center": (0.2, 0.2, 0.8, 0.8),
}
BACKGROUNDS: dict[str, int] = {"light": 205, "dark": 50}  # grey level, jittered by +-10
MAX_COUNT = 4
MIN_IMAGE_SIZE = 48  # every spec fits from 44 px up (checked size by size)
COLOR_JITTER = 10
BACKGROUND_JITTER = 10
DEFAULT_COUNTS = {"train": 10_000, "test": 1_000}

NUMBER_WORDS = {1: "a", 2: "two", 3: "three", 4: "four"}
POSITION_PHRASES = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}
CAPTION_TEMPLATES = (
    "{objects} {position} on a {background} background",
    "a photo of {objects} {position} on a {background} background",
    "a {background} background with {objects} {position}",
    "{objects} {position} of the picture, on a {background} background",
    "{objects} {position}",
    "a picture of {objects} {position}",
)


@dataclass(frozen=True)
class SceneSpec:
    """Every fact of one scene; `dataclasses.asdict` gives a sample's attributes."""

    shape: str = "circle"  # one of SHAPES
    color: str = "red"  # a key of COLORS
    size: str = "small"  # a key of SIZES
    count: int = 1  # 1..MAX_COUNT
    position: str = "center"  # a key of POSITIONS
    background: str = "light"  # a key of BACKGROUNDS

    def __post_init__(self) -> None:
        for field, valid in (
            ("shape", SHAPES),
            ("color", tuple(COLORS)),
            ("size", tuple(SIZES)),
            ("position", tuple(POSITIONS)),
            ("background", tuple(BACKGROUNDS)),
        ):
            value = getattr(self, field)
            if value not in valid:
                raise ValueError(f"unknown {field} {value!r}; valid: {', '.join(valid)}")
        if not 1 <= self.count <= MAX_COUNT:
            raise ValueError(f"count must be 1..{MAX_COUNT}, got {self.count}")


def sample_scene_spec(rng: random.Random) -> SceneSpec:
    """A spec with every field drawn uniformly."""
    return SceneSpec(
        shape=rng.choice(SHAPES),
        color=rng.choice(list(COLORS)),
        size=rng.choice(list(SIZES)),
        count=rng.randint(1, MAX_COUNT),
        position=rng.choice(list(POSITIONS)),
        background=rng.choice(list(BACKGROUNDS)),
    )


def object_phrase(spec: SceneSpec) -> str:
    """The objects in words, e.g. "two small red circles" or "a large blue square"."""
    noun = spec.shape if spec.count == 1 else f"{spec.shape}s"
    return f"{NUMBER_WORDS[spec.count]} {spec.size} {spec.color} {noun}"


def scene_caption(spec: SceneSpec, template: int = 0) -> str:
    """The caption of `spec` in one of `CAPTION_TEMPLATES`; every template states shape,
    color, size, count and position; the first four also state the background."""
    return CAPTION_TEMPLATES[template].format(
        objects=object_phrase(spec),
        position=POSITION_PHRASES[spec.position],
        background=spec.background,
    )


def render_scene(spec: SceneSpec, size: int = 64, rng: random.Random | int = 0) -> Image.Image:
    """Draw `spec` as a `size` x `size` RGB image; `rng` (or a seed) picks layout and jitter."""
    if size < MIN_IMAGE_SIZE:
        raise ValueError(f"image size must be at least {MIN_IMAGE_SIZE}, got {size}")
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    side = max(3, round(SIZES[spec.size] * size))
    # Draw order is fixed (layout, background, color) so that a color or background change
    # with the same seed keeps the layout.
    corners = _layout(spec, size, side, rng)
    grey = BACKGROUNDS[spec.background] + rng.randint(-BACKGROUND_JITTER, BACKGROUND_JITTER)
    color = tuple(
        min(255, max(0, channel + rng.randint(-COLOR_JITTER, COLOR_JITTER))) for channel in COLORS[spec.color]
    )
    image = Image.new("RGB", (size, size), (grey, grey, grey))
    draw = ImageDraw.Draw(image)
    for x, y in corners:
        _draw_shape(draw, spec.shape, x, y, side, color)
    return image


def load(split: str, *, limit: int | None, seed: int, image_size: int = 64) -> list[Sample]:
    """`limit` scenes (default 10,000 train / 1,000 test) of `image_size` pixels."""
    count = DEFAULT_COUNTS[split] if limit is None else limit
    samples = []
    for index in range(count):
        rng = random.Random(f"scenes/{split}/{seed}/{index}")
        spec = sample_scene_spec(rng)
        caption = scene_caption(spec, rng.randrange(len(CAPTION_TEMPLATES)))
        samples.append(
            Sample(
                image=render_scene(spec, image_size, rng),
                caption=caption,
                attributes=dataclasses.asdict(spec),
                source="scenes",
                uid=f"scenes:{split}:{seed}:{index}",
            )
        )
    return samples


def _layout(spec: SceneSpec, size: int, side: int, rng: random.Random) -> list[tuple[int, int]]:
    """Top-left corners of `spec.count` objects of `side` pixels inside the position's region.

    The region is cut into a grid of cells each at least `side + 2` pixels wide and high;
    objects go into distinct random cells, jittered inside them but one pixel off each cell
    edge, so neighbours are at least two pixels apart.
    """
    fx0, fy0, fx1, fy1 = POSITIONS[spec.position]
    x0, y0, x1, y1 = (round(f * size) for f in (fx0, fy0, fx1, fy1))
    grids = [
        (rows, cols)
        for rows in range(1, MAX_COUNT + 1)
        for cols in range(1, MAX_COUNT + 1)
        if rows * cols >= spec.count and (x1 - x0) // cols >= side + 2 and (y1 - y0) // rows >= side + 2
    ]
    rows, cols = rng.choice(grids)  # never empty for size >= MIN_IMAGE_SIZE
    corners = []
    for cell in rng.sample(range(rows * cols), spec.count):
        row, col = divmod(cell, cols)
        cx0 = x0 + (x1 - x0) * col // cols
        cx1 = x0 + (x1 - x0) * (col + 1) // cols
        cy0 = y0 + (y1 - y0) * row // rows
        cy1 = y0 + (y1 - y0) * (row + 1) // rows
        corners.append((rng.randint(cx0 + 1, cx1 - 1 - side), rng.randint(cy0 + 1, cy1 - 1 - side)))
    return corners


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, x: int, y: int, side: int, color: tuple[int, ...]) -> None:
    """Fill `shape` inside the box of `side` pixels whose top-left pixel is (x, y)."""
    last = side - 1  # PIL boxes include their end pixel
    if shape == "circle":
        draw.ellipse((x, y, x + last, y + last), fill=color)
    elif shape == "square":
        draw.rectangle((x, y, x + last, y + last), fill=color)
    elif shape == "triangle":
        draw.polygon([(x + last / 2, y), (x, y + last), (x + last, y + last)], fill=color)
    else:  # star: five points, inner radius half the outer one
        cx, cy, outer = x + last / 2, y + last / 2, last / 2
        points = []
        for k in range(10):
            radius = outer if k % 2 == 0 else outer / 2
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        draw.polygon(points, fill=color)


VARIED_FIELDS = ("color", "shape", "size", "count", "position", "background")


def minimal_pairs(split: str, n: int, seed: int = 0, image_size: int = 64) -> list[tuple[Sample, Sample]]:
    """`n` pairs of scenes that differ in exactly one fact (the paper's evaluation pairs' kind).

    Random pairs of scenes differ in five facts at once, so a text naming one of them explains
    little of the image difference; minimal pairs isolate each kind of difference. Both scenes
    of a pair share the layout seed, so a colour or background change keeps every position.
    """
    pairs = []
    for index in range(n):
        rng = random.Random(f"scenes-minimal/{split}/{seed}/{index}")
        spec = sample_scene_spec(rng)
        field = rng.choice(VARIED_FIELDS)
        options: dict[str, list[Any]] = {
            "color": list(COLORS), "shape": list(SHAPES), "size": list(SIZES), "count": list(range(1, MAX_COUNT + 1)),
            "position": list(POSITIONS), "background": list(BACKGROUNDS),
        }
        choices = options[field]
        variant = dataclasses.replace(spec, **{field: rng.choice([v for v in choices if v != getattr(spec, field)])})
        layout = rng.randrange(1 << 30)
        template = rng.randrange(len(CAPTION_TEMPLATES))
        first, second = (
            Sample(
                image=render_scene(scene, image_size, layout),
                caption=scene_caption(scene, template),
                attributes=dataclasses.asdict(scene),
                source="scenes",
                uid=f"scenes:minimal:{split}:{seed}:{index}:{side}",
            )
            for side, scene in (("a", spec), ("b", variant))
        )
        pairs.append((first, second))
    return pairs
