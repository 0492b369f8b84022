"""What every paper loader returns, and how a missing data set is reported."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from common.files import file_sha256
from training.sources.base import open_rgb

ImageRef = Path | np.ndarray  # an image file, or an (H, W, 3) uint8 array (CIFAR)


class MissingDataset(FileNotFoundError):
    """A data set that is not on disk (or not complete): the message says what was expected where."""


@dataclass(frozen=True)
class LabeledImages:
    """Images with one class label each (and, for CUB and COCO, their captions)."""

    name: str
    classes: tuple[str, ...]  # class names as the prompts read them, indexed by label
    images: tuple[ImageRef, ...]
    labels: tuple[int, ...]
    captions: tuple[tuple[str, ...], ...] = ()  # per image, when the data set has captions

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels) or (self.captions and len(self.captions) != len(self.images)):
            raise ValueError(f"{self.name}: {len(self.images)} images, {len(self.labels)} labels, "
                             f"{len(self.captions)} caption lists")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, positions: Sequence[int]) -> LabeledImages:
        return replace(
            self,
            images=tuple(self.images[i] for i in positions),
            labels=tuple(self.labels[i] for i in positions),
            captions=tuple(self.captions[i] for i in positions) if self.captions else (),
        )

    def open(self, position: int) -> Image.Image:
        ref = self.images[position]
        return open_rgb(ref) if isinstance(ref, Path) else Image.fromarray(ref)

    def key(self, position: int) -> str:
        """Content hash of one image: the embedding cache's row key."""
        ref = self.images[position]
        if isinstance(ref, Path):
            return file_sha256(ref)
        return hashlib.sha256(repr(ref.shape).encode() + np.ascontiguousarray(ref).tobytes()).hexdigest()


def find_folder(root: Path, candidates: Sequence[str], marker: str) -> Path | None:
    """The first `root/candidate` holding `marker` (data sets unpack under different names)."""
    for candidate in candidates:
        if (root / candidate / marker).exists():
            return root / candidate
    return None


def require(folder: Path | None, default: Path, dataset: str, layout: Sequence[str], how: str) -> Path:
    """The data set's folder (`folder`, or `default` where none was found) when every path of
    `layout` exists in it; else MissingDataset naming the missing paths, where, and how to get them."""
    where = folder if folder is not None else default
    missing = [name for name in layout if not (where / name).exists()]
    if missing:
        raise MissingDataset(f"{dataset}: expected {', '.join(missing)} under {where}; get it from {how}")
    return where


def read_rows(path: Path, columns: int) -> list[list[str]]:
    """Whitespace-separated index files (CUB's, AwA2's): each non-blank line split into `columns`
    fields, the last one keeping any spaces."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=columns - 1)
        if len(fields) != columns:
            raise ValueError(f"{path}, line {number}: expected {columns} fields, got {line!r}")
        rows.append(fields)
    return rows
