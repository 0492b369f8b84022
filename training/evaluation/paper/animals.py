"""Animals with Attributes 2 (AwA2): images of 50 animal classes and 85 binary class attributes.

Layout (AwA2-data.zip, https://cvml.ista.ac.at/AwA2/), under DATA_ROOT/Animals_with_Attributes2/:
  classes.txt                   "     1\tantelope" — number (1-based) and class name per line
  predicates.txt                "     1\tblack" — number (1-based) and attribute name per line
  predicate-matrix-binary.txt   50 lines × 85 space-separated 0/1: row = class, column = attribute
  testclasses.txt               the 10 classes of the proposed zero-shot test split (optional)
  JPEGImages/<class>/<class>_10001.jpg

Indexing: matrix column j (0-based) is the attribute numbered j + 1 in predicates.txt, and
row i is the class numbered i + 1 in classes.txt; both numberings are checked. (The authors'
code reads column 15 as "big", which is predicate 16, "small", and lists its non-visual
predicates by their 1-based numbers as 0-based columns: each off by one.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.evaluation.paper.datasets import LabeledImages, find_folder, read_rows, require

HOW = "https://cvml.ista.ac.at/AwA2/ (AwA2-data.zip, unzipped into DATA_ROOT)"
LAYOUT = ("classes.txt", "predicates.txt", "predicate-matrix-binary.txt", "JPEGImages")
DATA = Path(__file__).parents[1] / "data" / "paper" / "awa2.json"


@dataclass(frozen=True)
class Animals:
    images: LabeledImages  # class names as in classes.txt, "+" read as a space ("giant panda")
    predicates: tuple[str, ...]  # attribute names, indexed by matrix column
    matrix: np.ndarray  # (50, 85) bool: class has attribute


def non_visual_predicates() -> frozenset[str]:
    """Predicates no photo shows (diet, behaviour, smell), left out of the difference texts as
    the authors meant to (their list, by name; see training/evaluation/data/paper/awa2.json)."""
    return frozenset(json.loads(DATA.read_text())["non_visual"])


def _numbered(path: Path) -> list[str]:
    """Names of a "number<TAB>name" file, checking the numbers run 1, 2, 3, …"""
    rows = read_rows(path, 2)
    for expected, (number, _) in enumerate(rows, start=1):
        if int(number) != expected:
            raise ValueError(f"{path}: entry {expected} is numbered {number}")
    return [name.strip() for _, name in rows]


def load_awa2(root: Path, split: str = "test") -> Animals:
    """AwA2 images of `split`: "test" = the classes of testclasses.txt (all classes when the
    file is absent), "all" = every class."""
    found = find_folder(root, ["Animals_with_Attributes2", "."], "predicates.txt")
    folder = require(found, root / "Animals_with_Attributes2", "AwA2", LAYOUT, HOW)
    classes = _numbered(folder / "classes.txt")
    predicates = _numbered(folder / "predicates.txt")
    matrix = np.loadtxt(folder / "predicate-matrix-binary.txt", dtype=np.int64, ndmin=2)
    if matrix.shape != (len(classes), len(predicates)) or not np.isin(matrix, (0, 1)).all():
        raise ValueError(f"{folder / 'predicate-matrix-binary.txt'}: expected a {len(classes)}×{len(predicates)} "
                         f"0/1 matrix, got shape {matrix.shape}")
    wanted = classes
    if split == "test" and (folder / "testclasses.txt").is_file():
        wanted = [line.strip() for line in (folder / "testclasses.txt").read_text().splitlines() if line.strip()]
        unknown = sorted(set(wanted) - set(classes))
        if unknown:
            raise ValueError(f"{folder / 'testclasses.txt'} names classes not in classes.txt: {unknown}")
    paths, labels = [], []
    for name in wanted:
        for path in sorted((folder / "JPEGImages" / name).glob("*.jpg")):
            paths.append(path)
            labels.append(classes.index(name))
    images = LabeledImages("AwA2", tuple(name.replace("+", " ") for name in classes), tuple(paths), tuple(labels))
    return Animals(images, tuple(predicates), matrix.astype(bool))
