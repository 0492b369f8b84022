"""A CLIP eval transform in two parts: per image to 8-bit levels, then normalized per batch.

open_clip's eval transform is `Compose([resize, crop, to RGB, ToTensor(), Normalize(mean, std)])`.
Run per image, its last two steps cost a dozen small torch ops each; run in a server's threads,
every op releases the GIL and must win it back from the busy event loop (milliseconds under
load). Split, the per-image part is PIL and numpy only, its output a quarter of the bytes
(uint8), and the normalization runs once per batch, where the model runs (on its device):
the same float32 values as the transform's own, bit for bit (tested).

A transform of another shape is not split: `split_transform` gives None and the caller runs it
whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from open_clip.transform import MaybeToTensor
from PIL import Image
from torchvision.transforms import Compose, Normalize, ToTensor

from models.images import to_rgb


@dataclass(frozen=True)
class SplitTransform:
    """`head` (PIL → PIL: resize, crop) and the normalization `Normalize(mean, std)` after `ToTensor`."""

    head: Callable[[Image.Image], Image.Image]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def levels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Images → their 8-bit levels after `head`.  -> (N, 3, H, W) uint8"""
        arrays = [np.asarray(to_rgb(self.head(to_rgb(image)))) for image in images]  # (H, W, 3) each
        return torch.from_numpy(np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2)))

    def normalize(self, levels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8 → float32 as `ToTensor` then `Normalize` compute it, on `levels`' device."""
        mean = torch.as_tensor(self.mean, dtype=torch.float32, device=levels.device).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=torch.float32, device=levels.device).view(-1, 1, 1)
        return levels.to(torch.float32).div(255).sub_(mean).div_(std)


def split_transform(transform: Callable[[Image.Image], torch.Tensor]) -> SplitTransform | None:
    """The split of a `Compose([..., ToTensor(), Normalize(mean, std)])` of 3-channel stats; else None."""
    if not isinstance(transform, Compose) or len(transform.transforms) < 2:
        return None
    *head, to_tensor, normalize = transform.transforms
    if type(to_tensor) not in (ToTensor, MaybeToTensor):  # a subclass may convert otherwise
        return None
    if not isinstance(normalize, Normalize) or len(normalize.mean) != 3 or len(normalize.std) != 3:
        return None
    return SplitTransform(Compose(head), tuple(map(float, normalize.mean)), tuple(map(float, normalize.std)))
