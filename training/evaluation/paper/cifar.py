"""CIFAR-100, read from its python batches without running pickle code.

Layout (cifar-100-python.tar.gz, https://www.cs.toronto.edu/~kriz/cifar.html, the same files
`torchvision.datasets.CIFAR100(DATA_ROOT, download=True)` unpacks), DATA_ROOT/cifar-100-python/:
  train, test   Python 2 pickles of a dict: "data" (N, 3072) uint8, each row 1024 red, 1024
                green, then 1024 blue values of a 32×32 image, row-major; "fine_labels",
                "coarse_labels" (lists of ints); "filenames", "batch_label"
  meta          a dict: "fine_label_names" (100, label order), "coarse_label_names" (20)

The batches are read with `training.safe_pickle`, allowing only what a numpy array needs:
a tampered file cannot run code. Python 2 strings are read as latin-1 (numpy's own advice for
its old pickles), so keys and names come back as str.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from training.evaluation.paper.datasets import LabeledImages, find_folder, require
from training.safe_pickle import NUMPY_ARRAYS, restricted_load

HOW = ("https://www.cs.toronto.edu/~kriz/cifar.html (cifar-100-python.tar.gz), or "
       "torchvision.datasets.CIFAR100(DATA_ROOT, download=True)")
LAYOUT = ("train", "test", "meta")
SIZE_CLASSES = Path(__file__).parents[1] / "data" / "paper" / "cifar100_size.json"
SIDE = 32


def _read(path: Path) -> dict[str, Any]:
    """A pickled batch or meta dict; its values are checked where they are used."""
    value = restricted_load(path, NUMPY_ARRAYS, encoding="latin1")
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(value).__name__}")
    return {key.decode("latin1") if isinstance(key, bytes) else key: item for key, item in value.items()}


def _text(value: object) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def fine_label_names(root: Path) -> tuple[str, ...]:
    """The 100 fine label names in label order, "_" read as a space ("aquarium fish")."""
    folder = require(find_folder(root, ["cifar-100-python"], "meta"), root / "cifar-100-python", "CIFAR-100",
                     LAYOUT, HOW)
    return tuple(_text(name).replace("_", " ") for name in _read(folder / "meta")["fine_label_names"])


def load_cifar100(root: Path, split: str = "test") -> LabeledImages:
    """The `split` ("train" or "test") images with their fine labels, as (32, 32, 3) arrays."""
    classes = fine_label_names(root)
    path = root / "cifar-100-python" / split
    batch = _read(path)
    data, labels = np.asarray(batch["data"], dtype=np.uint8), [int(label) for label in batch["fine_labels"]]
    if data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE or len(labels) != len(data):
        raise ValueError(f"{path}: expected data (N, {3 * SIDE * SIDE}) with N fine labels, got {data.shape} "
                         f"and {len(labels)} labels")
    if labels and not 0 <= min(labels) <= max(labels) < len(classes):
        raise ValueError(f"{path}: fine labels outside 0..{len(classes) - 1}")
    pixels = data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)  # (N, 32, 32, 3): channel-major rows → HWC
    return LabeledImages("CIFAR-100", classes, tuple(pixels), tuple(labels))


def size_groups(classes: tuple[str, ...]) -> dict[str, list[int]]:
    """{"large": labels, "small": labels} of the size task, checked against the meta file's names."""
    groups = json.loads(SIZE_CLASSES.read_text())
    unknown = [name for key in ("large", "small") for name in groups[key] if name not in classes]
    if unknown:
        raise ValueError(f"{SIZE_CLASSES}: {unknown} are not CIFAR-100 fine label names")
    return {key: [classes.index(name) for name in groups[key]] for key in ("large", "small")}
