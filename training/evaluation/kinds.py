"""Kinds of difference for the generalization suite: what a pair looks like and what it says.

A kind draws one `Comparison` from a source's pool of images: two pictures that differ in one
known way, and the texts stating that difference in each order (wordings from
`training.evaluation.wordings`, none of which the finetune saw).

The image-quality kinds here take one picture and apply a controlled PIL edit of random
strength (`training.image_edits`, strengths from this module's ranges), so the
two pictures differ in that edit alone; they apply to any source (saturation only to colour
pictures). Every picture is first brought to the model's input size (`fit`). The kinds about
objects are in `object_kinds`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from training import image_edits
from training.evaluation import wordings
from training.image_edits import fit, is_colourful
from training.sources.base import Sample


@dataclass(frozen=True)
class Comparison:
    """Two pictures that differ in one known way and the texts that say how, in both orders."""

    first: Image.Image
    second: Image.Image
    forward: str  # how `first` differs from `second`
    backward: str  # how `second` differs from `first`


# A drawer gives one comparison per call, or None when this draw found none (a grey picture for
# saturation): the caller draws again, up to a limit. A kind prepares a drawer for one pool of
# samples once (indexing it as it needs), so drawing is cheap.
Drawer = Callable[[random.Random], Comparison | None]
Kind = Callable[[Sequence[Sample]], Drawer]


def darken(image: Image.Image, rng: random.Random) -> Image.Image:
    return image_edits.brightness(image, rng.uniform(0.35, 0.6))


def flatten(image: Image.Image, rng: random.Random) -> Image.Image:
    return image_edits.contrast(image, rng.uniform(0.25, 0.5))


def desaturate(image: Image.Image, rng: random.Random) -> Image.Image:
    return image_edits.saturation(image, rng.uniform(0.0, 0.25))


def blur(image: Image.Image, rng: random.Random) -> Image.Image:
    return image_edits.blur(image, rng.uniform(1.5, 2.5))


def add_noise(image: Image.Image, rng: random.Random) -> Image.Image:
    """Gaussian pixel noise, σ 25–45 grey levels, seeded by `rng`."""
    seed = rng.randrange(1 << 32)
    return image_edits.noise(image, rng.uniform(25, 45), seed)


def compress(image: Image.Image, rng: random.Random) -> Image.Image:
    """A JPEG round trip at quality 4–10: blocky artefacts and colour banding."""
    return image_edits.jpeg(image, rng.randint(4, 10))


def zoom(image: Image.Image, rng: random.Random) -> Image.Image:
    """The centre 50–70% of the picture, enlarged back to its size."""
    return image_edits.zoom(image, rng.uniform(0.5, 0.7))


def rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    """Turned 20–45° either way about the centre; the uncovered corners take the top-left pixel's colour."""
    return image_edits.rotate(image, rng.uniform(20, 45) * rng.choice((-1, 1)))


# kind -> (edit, how the edited picture compares, how the untouched one compares)
EDITS: dict[str, tuple[Callable[[Image.Image, random.Random], Image.Image], str, str]] = {
    "brightness": (darken, "darker", "brighter"),
    "contrast": (flatten, "lower in contrast", "higher in contrast"),
    "saturation": (desaturate, "less colourful", "more colourful"),
    "sharpness": (blur, "blurrier", "sharper"),
    "noise": (add_noise, "noisier", "cleaner"),
    "compression": (compress, "more heavily compressed", "less compressed"),
    "zoom": (zoom, "more zoomed in", "more zoomed out"),
    "rotation": (rotate, "more tilted", "more upright"),
}


def edit_kind(name: str) -> Kind:
    """The quality kind `name` of EDITS: one pooled picture, edited or not, in a random order."""
    edit, edited_words, original_words = EDITS[name]

    def prepare(pool: Sequence[Sample]) -> Drawer:
        def draw(rng: random.Random) -> Comparison | None:
            original = fit(rng.choice(pool).image)
            if name == "saturation" and not is_colourful(original):
                return None
            edited = edit(original, rng)
            forward, backward = wordings.comparative(rng, edited_words, original_words)
            return swap_maybe(Comparison(edited, original, forward, backward), rng)

        return draw

    return prepare


def swap_maybe(comparison: Comparison, rng: random.Random) -> Comparison:
    """`comparison` or its reverse, at random (both orders are scored; this only varies which is forward)."""
    if rng.random() < 0.5:
        return comparison
    return Comparison(comparison.second, comparison.first, comparison.backward, comparison.forward)


QUALITY_KINDS: dict[str, Kind] = {name: edit_kind(name) for name in EDITS}
