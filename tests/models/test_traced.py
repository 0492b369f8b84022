"""The traced towers (`models.traced`): the eager towers' vectors, or no trace at all."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from PIL import Image
from skimage import data

from models.traced import check_same, image_probes, traced

TEXTS = ["a red square", "two dogs playing in the snow on a sunny afternoon", "x"]
LONGER = ["a caption longer than any the trace was made with, " * 4]  # more tokens than every probe


def photos() -> list[Image.Image]:
    return [Image.fromarray(data.astronaut()), Image.fromarray(data.coffee()), Image.fromarray(data.chelsea())]


@pytest.fixture(scope="module")
def traced_encoder(encoder):
    copy = replace(encoder)  # its own fields: the session encoder stays eager
    assert copy.trace_towers() == ["image", "text"]
    return copy


@pytest.mark.parametrize("count", [1, 2, 3])
def test_traced_towers_embed_as_the_eager_ones_at_any_batch_size(encoder, traced_encoder, count):
    images = photos()[:count]
    assert torch.allclose(traced_encoder.encode_images(images), encoder.encode_images(images), atol=1e-5)
    assert torch.allclose(traced_encoder.encode_texts(TEXTS[:count]), encoder.encode_texts(TEXTS[:count]), atol=1e-5)


def test_a_traced_text_tower_takes_texts_longer_than_its_probes(encoder, traced_encoder):
    assert torch.allclose(traced_encoder.encode_texts(LONGER * 2), encoder.encode_texts(LONGER * 2), atol=1e-5)


class ShapeDependent(torch.nn.Module):
    """Branches on the batch size in Python: a trace bakes the branch in, and the check must see it."""

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        pooled = pixels.mean(dim=(2, 3))
        return pooled * 2 if pixels.shape[0] > 2 else pooled


class Untraceable(torch.nn.Module):
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.tensor(pixels.sum().item() > 0).float().expand(len(pixels), 1) + pixels.numpy().mean()


@pytest.mark.parametrize("tower", [ShapeDependent(), Untraceable()])
def test_a_tower_whose_trace_fails_or_differs_stays_eager(tower, caplog):
    probes = image_probes(8, torch.device("cpu"), torch.float32)
    assert traced(tower, probes, "image tower") is None
    assert "image tower served eager" in caplog.text


def test_check_same_measures_the_difference_relative_to_the_output():
    check_same(torch.tensor([100.0, 1.0]), torch.tensor([100.0, 1.001]))
    with pytest.raises(ValueError, match="differs"):
        check_same(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.1]))
    with pytest.raises(ValueError, match="shape"):
        check_same(torch.zeros(2, 3), torch.zeros(3, 2))
