"""Data sets stored as one folder of images per class: EuroSAT and SUN397.

EuroSAT (RGB, 27,000 64×64 Sentinel-2 patches of 10 land-use classes; https://github.com/phelber/EuroSAT,
or `torchvision.datasets.EuroSAT(DATA_ROOT, download=True)`): DATA_ROOT/eurosat/2750/<Class>/<Class>_<n>.jpg
(torchvision's layout), or the EuroSAT_RGB.zip layout DATA_ROOT/EuroSAT_RGB/<Class>/…

SUN397 (https://vision.princeton.edu/projects/2010/SUN/, SUN397.tar.gz, or
`torchvision.datasets.SUN397(DATA_ROOT, download=True)`): DATA_ROOT/SUN397/ClassName.txt lists
"/a/abbey", "/a/apartment_building/outdoor", …; the images are SUN397/a/abbey/sun_*.jpg.

Neither has an official test split the authors used: they test on a seeded 10% of all images
(torch.manual_seed(0), randperm, the last 10%). `authors_test_split` does the same over the
images in sorted order, which is torchvision's ImageFolder order for EuroSAT (so the same
images); their SUN397 order was the file system's, so that split is not reproducible exactly.
"""

from __future__ import annotations

from pathlib import Path

import torch

from training.evaluation.paper.datasets import LabeledImages, MissingDataset, find_folder, require

EUROSAT_HOW = ("https://github.com/phelber/EuroSAT (EuroSAT_RGB.zip), or "
               "torchvision.datasets.EuroSAT(DATA_ROOT, download=True)")
SUN397_HOW = ("https://vision.princeton.edu/projects/2010/SUN/ (SUN397.tar.gz), or "
              "torchvision.datasets.SUN397(DATA_ROOT, download=True)")
EUROSAT_FOLDERS = ("eurosat/2750", "EuroSAT_RGB", "2750")
TEST_FRACTION = 0.1
SPLIT_SEED = 0


def authors_test_split(count: int) -> list[int]:
    """Positions of the authors' test images among `count`: the last 10% of a seed-0 permutation."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(SPLIT_SEED)).tolist()
    return sorted(order[int(count * (1 - TEST_FRACTION)):])


def load_eurosat(root: Path, split: str = "test") -> LabeledImages:
    folder = next((root / name for name in EUROSAT_FOLDERS if (root / name).is_dir()), None)
    if folder is None:
        where = " or ".join(str(root / name) for name in EUROSAT_FOLDERS)
        raise MissingDataset(f"EuroSAT: expected <Class>/*.jpg folders under {where}; get it from {EUROSAT_HOW}")
    classes = sorted(path.name for path in folder.iterdir() if path.is_dir())
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(path for path in (folder / name).iterdir() if path.suffix.lower() in (".jpg", ".jpeg", ".png"))
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise ValueError(f"{folder}: no class folders with images")
    images = LabeledImages("EuroSAT", tuple(classes), tuple(paths), tuple(labels))
    return images.subset(authors_test_split(len(images))) if split == "test" else images


def sun397_class_name(entry: str) -> str:
    """"/a/apartment_building/outdoor" -> "apartment building outdoor"."""
    return " ".join(entry.strip()[3:].replace("_", " ").split("/"))


def load_sun397(root: Path, split: str = "test") -> LabeledImages:
    folder = require(find_folder(root, ["SUN397"], "ClassName.txt"), root / "SUN397", "SUN397", ["ClassName.txt"],
                     SUN397_HOW)
    entries = [line.strip() for line in (folder / "ClassName.txt").read_text().splitlines() if line.strip()]
    label_of = {entry.strip("/"): label for label, entry in enumerate(entries)}
    paths, labels = [], []
    for path in sorted(folder.rglob("sun_*.jpg")):
        relative = "/".join(path.relative_to(folder).parts[:-1])
        if relative not in label_of:
            raise ValueError(f"{path}: its folder {relative!r} is not a class of ClassName.txt")
        paths.append(path)
        labels.append(label_of[relative])
    if not paths:
        raise ValueError(f"{folder}: no sun_*.jpg images")
    images = LabeledImages("SUN397", tuple(sun397_class_name(entry) for entry in entries), tuple(paths), tuple(labels))
    return images.subset(authors_test_split(len(images))) if split == "test" else images
