"""`to_rgb`'s scaling rule for images deeper than 8 bits, and `decode_upright` (see models/images.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from models.images import decode_upright, to_rgb


def grey_levels(image: Image.Image) -> list[int]:
    rgb = np.asarray(to_rgb(image))
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    return rgb[0, :, 0].tolist()


@pytest.mark.parametrize(("mode", "dtype"), [("I;16", "<u2"), ("I;16B", ">u2"), ("I;16L", "<u2")])
def test_16_bit_values_are_divided_by_257(mode, dtype):
    row = np.array([0, 257, 32896, 65535], dtype=dtype)
    image = Image.frombytes(mode, (4, 1), row.tobytes())
    assert grey_levels(image) == [0, 1, 128, 255]


def test_32_bit_integers_in_the_16_bit_range_are_read_as_16_bit():
    assert grey_levels(Image.fromarray(np.array([[0, 257, 65535]], dtype=np.int32))) == [0, 1, 255]


def test_32_bit_integers_beyond_the_16_bit_range_are_stretched_from_min_to_max():
    assert grey_levels(Image.fromarray(np.array([[-1000, 0, 1000]], dtype=np.int32))) == [0, 128, 255]
    assert grey_levels(Image.fromarray(np.array([[70000, 70000]], dtype=np.int32))) == [0, 0]


def test_floats_in_the_unit_range_are_scaled_and_others_clipped():
    assert grey_levels(Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))) == [0, 128, 255]
    assert grey_levels(Image.fromarray(np.array([[-3.0, 100.0, 300.0]], dtype=np.float32))) == [0, 100, 255]
    assert grey_levels(Image.fromarray(np.array([[np.nan, 0.5, 1.0]], dtype=np.float32))) == [0, 128, 255]


def test_8_bit_modes_are_unchanged():
    assert grey_levels(Image.fromarray(np.array([[0, 7, 255]], dtype=np.uint8))) == [0, 7, 255]


def jpeg_file(image: Image.Image, **save_options) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, **save_options)
    return Image.open(io.BytesIO(buffer.getvalue()))


def gradient(width: int, height: int) -> Image.Image:
    x, y = np.meshgrid(np.linspace(0, 255, width), np.linspace(0, 255, height))
    return Image.fromarray(np.dstack([x, y, 255 - x]).astype(np.uint8))


@pytest.mark.parametrize(
    ("side", "decoded"),
    [(None, (640, 480)), (64, (160, 120)), (224, (320, 240)), (240, (320, 240)), (241, (640, 480))],
)
def test_a_large_jpeg_is_decoded_reduced_but_never_below_the_side(side, decoded):
    image = decode_upright(jpeg_file(gradient(640, 480)), side)
    assert image.size == decoded and image.mode == "RGB"


def test_other_formats_decode_in_full():
    buffer = io.BytesIO()
    gradient(640, 480).save(buffer, format="PNG")
    assert decode_upright(Image.open(buffer), 64).size == (640, 480)


def test_the_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored pixels are to be turned 90° clockwise
    upright = decode_upright(jpeg_file(gradient(64, 32), exif=exif))
    assert upright.size == (32, 64)
    expected = np.asarray(gradient(64, 32).transpose(Image.Transpose.ROTATE_270), dtype=float)
    assert np.abs(np.asarray(upright, dtype=float) - expected).mean() < 3  # JPEG's loss only
