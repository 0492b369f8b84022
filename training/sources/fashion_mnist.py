"""Fashion-MNIST from Debian's `dataset-fashion-mnist`: 28 x 28 grey product photos, 10 classes.

Splits are the dataset's own: "train" = 60,000 images, "test" = the 10,000 t10k images.
Captions name the class ("a photo of a sneaker"); attributes are
{"label": a name from FASHION_CLASSES, "label_index": 0..9}.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from training.sources.base import Sample, select_indices

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
FILES = {  # split -> (images, labels)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_CLASSES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
FASHION_NOUNS = (  # FASHION_CLASSES as they read in a sentence
    "a t-shirt",
    "a pair of trousers",
    "a pullover",
    "a dress",
    "a coat",
    "a sandal",
    "a shirt",
    "a sneaker",
    "a bag",
    "an ankle boot",
)
_UNSIGNED_BYTE = 0x08  # idx type code; the only one Fashion-MNIST uses


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped idx file of unsigned bytes (the MNIST format) into an array."""
    with gzip.open(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an idx file (bad magic number)")
    type_code, ndim = data[2], data[3]
    if type_code != _UNSIGNED_BYTE:
        raise ValueError(f"{path}: idx type 0x{type_code:02x} unsupported; only unsigned bytes")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: idx header truncated")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    body = data[header:]
    if len(body) != math.prod(shape):
        raise ValueError(f"{path}: idx body has {len(body)} bytes, shape {shape} needs {math.prod(shape)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def load(split: str, *, limit: int | None, seed: int, root: str | Path = DEFAULT_ROOT) -> list[Sample]:
    images, labels = _read_split(Path(root), split)
    samples = []
    for index in select_indices(len(labels), limit, seed):
        label = int(labels[index])
        samples.append(
            Sample(
                image=Image.fromarray(images[index]).convert("RGB"),
                caption=f"a photo of {FASHION_NOUNS[label]}",
                attributes={"label": FASHION_CLASSES[label], "label_index": label},
                source="fashion-mnist",
                uid=f"fashion-mnist:{split}:{index}",
            )
        )
    return samples


def _read_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    image_path, label_path = (root / name for name in FILES[split])
    for path in (image_path, label_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"Fashion-MNIST file {path} not found. Install it with "
                f"`apt-get install dataset-fashion-mnist`, or pass root= a folder holding "
                f"{', '.join(FILES[split])}"
            )
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{root}: expected (N, H, W) images and N labels, got {images.shape} and {labels.shape}")
    if labels.size and labels.max() >= len(FASHION_CLASSES):
        raise ValueError(f"{label_path}: label {labels.max()} out of range 0..9")
    return images, labels
