"""Kinds of difference for the generalization suite: what a pair looks like and what it says.

A kind draws one `Comparison` from a source's pool of images: two pictures that differ in one
known way, and the texts stating that difference in each order (wordings from
`training.evaluation.wordings`, none of which the finetune saw).

The image-quality kinds here take one picture and apply a controlled PIL edit of random
strength, so the two pictures differ in that edit alone; they apply to any source (saturation
only to colour pictures). Every picture is first brought to the model's input size
(`INPUT_SIDE`, centre-cropped square) so an edit is neither lost to, nor made by, the
encoder's resize. The kinds about objects are in `object_kinds`.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from training.evaluation import wordings
from training.sources.base import Sample

INPUT_SIDE = 64  # tiny's image tower reads 64 x 64 pixels


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


def fit(image: Image.Image, side: int = INPUT_SIDE) -> Image.Image:
    """`image` centre-cropped to a square and resized to `side` pixels (bicubic, as the encoder does)."""
    width, height = image.size
    crop = min(width, height)
    left, top = (width - crop) // 2, (height - crop) // 2
    square = image.convert("RGB").crop((left, top, left + crop, top + crop))
    return square if crop == side else square.resize((side, side), Image.Resampling.BICUBIC)


def is_colourful(image: Image.Image, threshold: float = 12.0) -> bool:
    """True unless the picture is (nearly) grey: mean spread between its channels below `threshold`."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)  # (H, W, 3)
    return float((pixels.max(axis=2) - pixels.min(axis=2)).mean()) >= threshold


def darken(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(rng.uniform(0.35, 0.6))


def flatten(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(rng.uniform(0.25, 0.5))


def desaturate(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageEnhance.Color(image).enhance(rng.uniform(0.0, 0.25))


def blur(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 2.5)))


def add_noise(image: Image.Image, rng: random.Random) -> Image.Image:
    """Gaussian pixel noise, σ 25–45 grey levels, seeded by `rng`."""
    noise = np.random.default_rng(rng.randrange(1 << 32)).normal(0.0, rng.uniform(25, 45), (*image.size[::-1], 3))
    pixels = np.asarray(image, dtype=np.float32) + noise  # (H, W, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def compress(image: Image.Image, rng: random.Random) -> Image.Image:
    """A JPEG round trip at quality 4–10: blocky artefacts and colour banding."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(4, 10))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def zoom(image: Image.Image, rng: random.Random) -> Image.Image:
    """The centre 50–70% of the picture, enlarged back to its size."""
    side = image.size[0]
    crop = round(side * rng.uniform(0.5, 0.7))
    offset = (side - crop) // 2
    return image.crop((offset, offset, offset + crop, offset + crop)).resize(image.size, Image.Resampling.BICUBIC)


def rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    """Turned 20–45° either way about the centre; the uncovered corners take the top-left pixel's colour."""
    angle = rng.uniform(20, 45) * rng.choice((-1, 1))
    corner = image.getpixel((0, 0))
    return image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=corner)


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
