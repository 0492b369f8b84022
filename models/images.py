"""Image normalisation shared by every encoder and data source."""

from __future__ import annotations

from PIL import Image

BACKGROUND = (255, 255, 255)


def to_rgb(image: Image.Image, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """Return `image` as RGB, compositing any transparency onto `background`.

    PIL's plain ``convert("RGB")`` drops alpha and shows whatever colour hides under
    transparent pixels (often black); emoji and pixel-art sources are mostly transparent.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return image.convert("RGB")
