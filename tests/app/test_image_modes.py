"""Images of more than 8 bits per channel (16-bit PNG, 32-bit int and float TIFF) embed like their
8-bit versions: pixel values are scaled by the mode's range, never clipped to white or black."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from apptools import b64
from PIL import Image, ImageDraw


def grey_scene(size: int = 64) -> Image.Image:
    """An 8-bit greyscale gradient with a dark disc: far from white and from black."""
    ramp = np.linspace(20, 235, size)[None, :].repeat(size, 0).astype(np.uint8)
    image = Image.fromarray(ramp, "L")
    ImageDraw.Draw(image).ellipse((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=30)
    return image


def saved(image: Image.Image, format: str) -> bytes:
    """The file Pillow writes, read back by the server as a client would send it."""
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def embed(client, *files: bytes) -> torch.Tensor:
    response = client.post("/embed", json={"images": [b64(data) for data in files]})
    assert response.status_code == 200, response.text
    return torch.tensor(response.json()["image_embeddings"])


EIGHT_BIT = np.asarray(grey_scene())
DEEP = {
    "16-bit PNG": (Image.fromarray(EIGHT_BIT.astype(np.uint16) * 257), "PNG", "I;16"),
    "16-bit TIFF": (Image.fromarray(EIGHT_BIT.astype(np.uint16) * 257), "TIFF", "I;16"),
    "32-bit int TIFF, 16-bit values": (Image.fromarray(EIGHT_BIT.astype(np.int32) * 257), "TIFF", "I"),
    "float TIFF in 0-1": (Image.fromarray((EIGHT_BIT / 255).astype(np.float32)), "TIFF", "F"),
}


@pytest.mark.parametrize("name", DEEP)
def test_deep_images_embed_like_their_8_bit_version(client, name):
    image, format, mode = DEEP[name]
    data = saved(image, format)
    assert Image.open(io.BytesIO(data)).mode == mode  # the file really is that deep
    deep, eight_bit, white, black = embed(
        client,
        data,
        saved(grey_scene(), "PNG"),
        saved(Image.new("L", (64, 64), 255), "PNG"),
        saved(Image.new("L", (64, 64), 0), "PNG"),
    )
    assert float(deep @ eight_bit) > 0.99
    assert float(deep @ white) < 0.9 and float(deep @ black) < 0.9
