"""Oxford Flowers-102: 8,189 flower photos of 102 species.

Layout (https://www.robots.ox.ac.uk/~vgg/data/flowers/102/: 102flowers.tgz, imagelabels.mat,
setid.mat — what `torchvision.datasets.Flowers102(DATA_ROOT, download=True)` puts in
DATA_ROOT/flowers-102/):
  jpg/image_00001.jpg … image_08189.jpg
  imagelabels.mat   "labels": (1, 8189), the 1-based class of image_{i:05d}.jpg in column i − 1
  setid.mat         "trnid", "valid", "tstid": 1-based image ids of each split

The .mat files carry numbers only. Class names in label order are a data file
(training/evaluation/data/paper/flowers102_classes.txt: the names torchvision ships as
`Flowers102.classes`, checked equal in the tests); the blue/yellow lists of the colour task
(flowers102_colour.json) are checked against those names and the label file's range.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.evaluation.paper.datasets import LabeledImages, find_folder, require

HOW = ("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ (102flowers.tgz, imagelabels.mat, setid.mat), "
       "or torchvision.datasets.Flowers102(DATA_ROOT, download=True)")
LAYOUT = ("jpg", "imagelabels.mat", "setid.mat")
DATA = Path(__file__).parents[1] / "data" / "paper"
SPLIT_KEYS = {"train": "trnid", "val": "valid", "test": "tstid"}


def class_names() -> tuple[str, ...]:
    return tuple(line.strip() for line in (DATA / "flowers102_classes.txt").read_text().splitlines() if line.strip())


def load_flowers102(root: Path, split: str = "test") -> LabeledImages:
    from scipy.io import loadmat

    found = find_folder(root, ["flowers-102", "Flowers102/flowers-102", "."], "imagelabels.mat")
    folder = require(found, root / "flowers-102", "Flowers-102", LAYOUT, HOW)
    labels = np.asarray(loadmat(folder / "imagelabels.mat")["labels"]).reshape(-1).astype(np.int64)
    classes = class_names()
    if labels.size and not 1 <= labels.min() <= labels.max() <= len(classes):
        raise ValueError(f"{folder / 'imagelabels.mat'}: labels outside 1..{len(classes)}")
    ids = np.asarray(loadmat(folder / "setid.mat")[SPLIT_KEYS[split]]).reshape(-1).astype(np.int64)
    if ids.size and not 1 <= ids.min() <= ids.max() <= labels.size:
        raise ValueError(f"{folder / 'setid.mat'}: {SPLIT_KEYS[split]} holds ids outside 1..{labels.size}")
    paths = tuple(folder / "jpg" / f"image_{image_id:05d}.jpg" for image_id in ids.tolist())
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise ValueError(f"{folder / 'jpg'}: {len(missing)} images of the {split} split are missing, e.g. {missing[0]}")
    return LabeledImages("Flowers-102", classes, paths, tuple(int(labels[i - 1]) - 1 for i in ids.tolist()))


def colour_groups(classes: tuple[str, ...]) -> dict[str, list[int]]:
    """{"blue": labels, "yellow": labels} of the colour task (0-based, the loader's labels)."""
    path = DATA / "flowers102_colour.json"
    groups = json.loads(path.read_text())
    unknown = [name for key in ("blue", "yellow") for name in groups[key] if name not in classes]
    if unknown:
        raise ValueError(f"{path}: {unknown} are not Flowers-102 class names")
    return {key: [classes.index(name) for name in groups[key]] for key in ("blue", "yellow")}
