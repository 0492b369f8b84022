"""How a picture looks, said in its caption: the look views of `pcclip train-base`.

A share of the base tower's training pictures gets a second view, edited to look dark, bright,
washed out, blurry, grainy, black and white, vivid, blocky, close-up or tilted
(`training.image_edits`, strong enough to show at 64 x 64), captioned twice: the picture's own
caption with the look appended ("a photo of a sneaker, blurry and out of focus") and the look
alone ("a blurry picture"). So the image tower learns to encode how a picture looks, which the
difference texts about brightness, sharpness, noise, compression, zoom and tilt then need.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from training import image_edits
from training.edit_pairs import EDIT_KINDS


@dataclass(frozen=True)
class Look:
    name: str
    edit: Callable[[Image.Image, float, int], Image.Image]  # (fitted picture, strength, seed)
    strengths: tuple[float, float]  # drawn uniformly
    suffixes: tuple[str, ...]  # appended to the picture's caption
    short: str  # the look alone, as a caption
    needs_colour: bool = False  # meaningless on a grey picture


_EDIT = {name: kind.apply for name, kind in EDIT_KINDS.items()}  # the edit pairs' (picture, level, seed) edits

LOOKS = (
    Look("dark", _EDIT["brightness"], (0.25, 0.45),
         ("very dark", "underexposed and dark", "in dim light"), "a dark picture"),
    Look("bright", _EDIT["brightness"], (1.6, 2.0),
         ("very bright", "overexposed and bright"), "a bright picture"),
    Look("low contrast", _EDIT["contrast"], (0.2, 0.4),
         ("low in contrast", "washed out and faded"), "a low-contrast picture"),
    Look("blurry", _EDIT["sharpness"], (1.5, 3.0),
         ("blurry", "out of focus", "blurred"), "a blurry picture"),
    Look("noisy", _EDIT["noise"], (30.0, 55.0),
         ("grainy with noise", "noisy"), "a noisy picture"),
    # strength here: JPEG quality, and the share of the picture kept (not the edit pairs' levels)
    Look("compressed", lambda im, s, _: image_edits.jpeg(im, round(s)), (3, 9),
         ("with blocky JPEG artefacts", "heavily compressed"), "a heavily compressed JPEG"),
    Look("close-up", lambda im, s, _: image_edits.zoom(im, s), (0.4, 0.6),
         ("zoomed in close", "a close-up crop"), "a close-up picture"),
    Look("tilted", _EDIT["rotation"], (25.0, 50.0),
         ("tilted", "rotated at an angle"), "a tilted picture"),
    Look("black and white", _EDIT["saturation"], (0.0, 0.0),
         ("in black and white", "in greyscale"), "a black-and-white picture", needs_colour=True),
    Look("vivid", _EDIT["saturation"], (2.0, 2.6),
         ("with vivid saturated colours", "oversaturated"), "a picture with vivid colours", needs_colour=True),
)


def look_view(image: Image.Image, caption: str, rng: random.Random) -> tuple[Image.Image, list[str]]:
    """`image` (fitted to the model's input) with one look drawn by `rng`, and its two captions."""
    fitted = image_edits.fit(image)
    colourful = image_edits.is_colourful(fitted)
    look = rng.choice([look for look in LOOKS if colourful or not look.needs_colour])
    strength = rng.uniform(*look.strengths)
    edited = look.edit(fitted, strength, rng.randrange(2**31))
    return edited, [f"{caption}, {rng.choice(look.suffixes)}", look.short]
