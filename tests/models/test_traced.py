"""The traced image tower (`models.traced`): the eager tower's vectors, or no trace at all."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from PIL import Image
from skimage import data

from models.traced import check_same, trace_image_tower


def photos() -> list[Image.Image]:
    return [Image.fromarray(data.astronaut()), Image.fromarray(data.coffee()), Image.fromarray(data.chelsea())]


def test_a_traced_tower_embeds_as_the_eager_one_at_any_batch_size(encoder):
    traced = replace(encoder)  # its own copy of the fields: the session encoder stays eager
    assert traced.trace_image_tower()
    for count in (1, 2, 3):
        eager_vectors = encoder.encode_images(photos()[:count])
        assert torch.allclose(traced.encode_images(photos()[:count]), eager_vectors, atol=1e-5)


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
    assert trace_image_tower(tower, 8, torch.device("cpu"), torch.float32) is None
    assert "served eager" in caplog.text


def test_check_same_measures_the_difference_relative_to_the_output():
    check_same(torch.tensor([100.0, 1.0]), torch.tensor([100.0, 1.001]))
    with pytest.raises(ValueError, match="differs"):
        check_same(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.1]))
    with pytest.raises(ValueError, match="shape"):
        check_same(torch.zeros(2, 3), torch.zeros(3, 2))
