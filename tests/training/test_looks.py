"""The look views of `pcclip train-base`: the edit shows in the pixels, the caption says it."""

import random

import numpy as np
import pytest
from PIL import Image

from training import image_edits
from training.base_model import training_views
from training.looks import LOOKS, look_view
from training.sources import Sample


def picture(colourful: bool) -> Image.Image:
    """A 64 x 64 picture with edges and, if asked, colour: every look changes it visibly."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(40, 216, size=(8, 8, 3), dtype=np.uint8)
    if not colourful:
        pixels[..., 1] = pixels[..., 2] = pixels[..., 0]
    return Image.fromarray(pixels).resize((64, 64), Image.Resampling.NEAREST)


@pytest.mark.parametrize("look", LOOKS, ids=lambda look: look.name)
def test_every_look_changes_the_picture_and_is_named_in_both_captions(look, monkeypatch):
    monkeypatch.setattr("training.looks.LOOKS", (look,))
    edited, captions = look_view(picture(colourful=True), "a photo of a cat", random.Random(3))
    assert edited.size == (image_edits.INPUT_SIDE,) * 2
    change = np.abs(np.asarray(edited, dtype=float) - np.asarray(picture(colourful=True), dtype=float)).mean()
    assert change > 5, f"{look.name}: mean change {change:.1f} grey levels"
    suffix = captions[0].removeprefix("a photo of a cat, ")
    assert suffix in look.suffixes and captions[1] == look.short


def test_grey_pictures_get_no_colour_looks():
    rng = random.Random(0)
    shorts = {look_view(picture(colourful=False), "x", rng)[1][1] for _ in range(200)}
    colour_shorts = {look.short for look in LOOKS if look.needs_colour}
    assert shorts == {look.short for look in LOOKS} - colour_shorts


def test_training_views_add_looks_for_a_share_of_the_pictures_but_never_photos():
    image = picture(colourful=True)
    samples = [Sample(image, f"drawing {i}", {}, "jsonl", f"jsonl:{i}") for i in range(300)]
    samples += [Sample(image, f"photo {i}", {}, "photos", f"photos:{i}") for i in range(100)]
    views = training_views(samples, look_fraction=0.3, rng=random.Random(0))
    looked = views[len(samples):]
    assert 60 <= len(looked) <= 120  # 30% of the 300 drawings
    assert all(captions[0].startswith("drawing ") for _, captions in looked)
    assert training_views(samples, 0.0, random.Random(0)) == [(s.image, [s.caption]) for s in samples]
