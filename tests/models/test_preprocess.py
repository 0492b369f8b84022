"""The eval transform split in two (`models.preprocess`): 8-bit levels per image, normalized per batch,
the same model input as the whole transform, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from torchvision.transforms import Compose, Normalize, Resize, ToTensor

from models.preprocess import split_transform


def photos() -> list[Image.Image]:
    return [
        Image.fromarray(data.astronaut()),
        Image.fromarray(data.camera()).convert("RGB"),
        Image.fromarray(data.coffee()).resize((333, 211)),
    ]


def test_the_split_gives_the_transforms_own_model_input(encoder):
    levels = encoder.pixels(photos())
    assert levels.dtype == torch.uint8 and levels.shape[1] == 3
    whole = torch.stack([encoder.preprocess(image) for image in photos()])
    assert torch.equal(encoder._split.normalize(levels), whole)


def test_8_bit_pixels_embed_as_the_transforms_floats(encoder):
    whole = torch.stack([encoder.preprocess(image) for image in photos()])
    assert torch.equal(encoder.encode_pixels(encoder.pixels(photos())), encoder.encode_pixels(whole))


@pytest.mark.parametrize(
    "transform",
    [
        Compose([Resize(8), ToTensor()]),  # nothing to normalize
        Compose([Resize(8), ToTensor(), Normalize([0.5], [0.5])]),  # one channel's statistics
        lambda image: torch.zeros(3, 8, 8),  # not a Compose
    ],
)
def test_other_transforms_are_not_split(transform):
    assert split_transform(transform) is None


def test_an_encoder_whose_transform_does_not_split_gives_floats(encoder):
    from dataclasses import replace

    plain = replace(encoder, preprocess=Compose([*encoder.preprocess.transforms[:-2], ToTensor()]))
    pixels = plain.pixels(photos()[:1])
    assert pixels.dtype == torch.float32 and float(pixels.max()) <= 1.0
    with pytest.raises(ValueError, match="8-bit pixels"):
        plain.encode_pixels(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_levels_of_an_image_with_transparency_are_composited_on_white(encoder):
    clear = Image.fromarray(np.zeros((64, 64, 4), dtype=np.uint8))  # fully transparent
    assert int(encoder.pixels([clear]).min()) == 255
