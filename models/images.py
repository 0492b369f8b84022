"""Image normalisation shared by every encoder and data source.

Images deeper than 8 bits are scaled to 0–255 by their mode's range before anything else:

- ``I;16`` (16-bit greyscale, any byte order): value / 257, so 65535 is white.
- ``I`` (32-bit integer): values within 0–65535 are read as 16-bit (/ 257), which is how
  Pillow opens most 16-bit files; any other range is stretched from its minimum (black) to its
  maximum (white).
- ``F`` (32-bit float): values all within 0–1 are read as a unit range (× 255); otherwise as
  8-bit levels, clipped to 0–255. NaN reads as 0.

Other modes go through Pillow's ``convert`` (transparency composited, see `to_rgb`).

Every path that embeds an image file (the server, `pcclip index build`, its Ray engine, an
index rebuild) decodes it with `decode_upright`, so one file gets one vector whichever way it
came in.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

BACKGROUND = (255, 255, 255)
SIXTEEN_BIT_MAX = 65535


def decode_upright(image: Image.Image, side: int | None = None) -> Image.Image:
    """Decode an opened image file's pixels, turned upright by its EXIF orientation, as RGB.

    With `side` (the model's input side), a JPEG at least twice that side in both dimensions is
    decoded at 1/2, 1/4 or 1/8 scale by libjpeg (Pillow's `draft`), never smaller than `side`:
    the model's own resize then starts from a quarter of the pixels or fewer. The image is read
    as the full decode would be up to that resize (cosine between the two embeddings ≥ 0.999
    on `bench/peers.py`'s photos) at a fraction of the CPU. Other formats decode in full."""
    if side:
        image.draft(None, (side, side))  # a no-op for other formats and for decoded images
    image.load()
    ImageOps.exif_transpose(image, in_place=True)  # a copy would be one more full image in memory
    return to_rgb(image)


def to_rgb(image: Image.Image, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """Return `image` as RGB, compositing any transparency onto `background`.

    PIL's plain ``convert("RGB")`` drops alpha and shows whatever colour hides under
    transparent pixels (often black); emoji and pixel-art sources are mostly transparent.
    It also clips 16-bit and float pixels to 0–255 (white, or black for floats in 0–1).
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = to_8_bit(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return image.convert("RGB")


def to_8_bit(image: Image.Image) -> Image.Image:
    """An ``I;16*``, ``I`` or ``F`` image as 8-bit greyscale (``L``), by the rule of this module."""
    values = np.array(image, dtype=np.float32)  # (H, W), a writable copy; byte order handled by numpy
    if image.mode == "F":
        np.nan_to_num(values, copy=False, nan=0.0)
        if values.min() >= 0 and values.max() <= 1:
            values *= 255
    elif image.mode == "I" and (values.min() < 0 or values.max() > SIXTEEN_BIT_MAX):
        low, high = values.min(), values.max()
        values -= low
        values *= 255 / max(high - low, 1)  # a constant image reads as black
    else:
        values /= 257
    np.clip(values, 0, 255, out=values)
    return Image.fromarray(np.rint(values, out=values).astype(np.uint8))
