"""Controlled edits of how a picture looks (light, contrast, colour, focus, noise, compression,
framing, tilt), each at an explicit strength.

The finetune's edit pairs (`training.edit_pairs`) and the generalization suite's quality kinds
(`training.evaluation.kinds`) both edit pictures with these, each drawing strengths from its own
ranges. A picture is first brought to the model's input size (`fit`), so an edit is neither lost
to, nor made by, the encoder's resize.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

INPUT_SIDE = 64  # tiny's image tower reads 64 x 64 pixels


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


def brightness(image: Image.Image, factor: float) -> Image.Image:
    """Pixel values times `factor` (< 1 darker, > 1 brighter)."""
    return ImageEnhance.Brightness(image).enhance(factor)


def contrast(image: Image.Image, factor: float) -> Image.Image:
    """Pixel values pulled towards (< 1) or pushed from (> 1) the mean grey."""
    return ImageEnhance.Contrast(image).enhance(factor)


def saturation(image: Image.Image, factor: float) -> Image.Image:
    """Colour towards its grey (0: black and white) or beyond (> 1)."""
    return ImageEnhance.Color(image).enhance(factor)


def blur(image: Image.Image, radius: float) -> Image.Image:
    """Gaussian blur of `radius` pixels (0: untouched)."""
    return image if radius <= 0 else image.filter(ImageFilter.GaussianBlur(radius))


def noise(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    """Gaussian pixel noise of `sigma` grey levels, drawn from `seed`."""
    if sigma <= 0:
        return image
    grain = np.random.default_rng(seed).normal(0.0, sigma, (*image.size[::-1], 3))
    pixels = np.asarray(image, dtype=np.float32) + grain  # (H, W, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    """A JPEG round trip at `quality` (1–95): low ones give blocky artefacts and colour banding."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def zoom(image: Image.Image, fraction: float) -> Image.Image:
    """The centre `fraction` of the (square) picture, enlarged back to its size (1: untouched)."""
    side = image.size[0]
    crop = round(side * fraction)
    if crop >= side:
        return image
    offset = (side - crop) // 2
    return image.crop((offset, offset, offset + crop, offset + crop)).resize(image.size, Image.Resampling.BICUBIC)


def rotate(image: Image.Image, degrees: float) -> Image.Image:
    """Turned `degrees` about the centre; the uncovered corners take the top-left pixel's colour."""
    if degrees == 0:
        return image
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=image.getpixel((0, 0)))
