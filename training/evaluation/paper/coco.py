"""COCO captions, val2017: 5,000 images with about five captions each.

Layout (https://cocodataset.org/#download: val2017.zip and annotations_trainval2017.zip), under
DATA_ROOT/coco/ (or DATA_ROOT itself):
  annotations/captions_val2017.json   {"images": [{"id", "file_name"}, …],
                                       "annotations": [{"image_id", "caption"}, …]}
  val2017/000000000139.jpg …
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from training.evaluation.paper.datasets import LabeledImages, find_folder, require

HOW = "https://cocodataset.org/#download (val2017.zip and annotations_trainval2017.zip)"
ANNOTATIONS = "annotations/captions_val2017.json"
LAYOUT = (ANNOTATIONS, "val2017")


def load_coco_captions(root: Path) -> LabeledImages:
    """Every val2017 image that has captions, in image-id order; label = position (no classes)."""
    folder = require(find_folder(root, ["coco", "."], ANNOTATIONS), root / "coco", "COCO captions", LAYOUT, HOW)
    data = json.loads((folder / ANNOTATIONS).read_text(encoding="utf-8"))
    captions: dict[int, list[str]] = defaultdict(list)
    for annotation in data["annotations"]:
        captions[int(annotation["image_id"])].append(" ".join(str(annotation["caption"]).split()))
    files = {int(image["id"]): image["file_name"] for image in data["images"]}
    ids = sorted(image for image in files if captions.get(image))
    missing = [files[image] for image in ids if not (folder / "val2017" / files[image]).is_file()]
    if missing:
        raise ValueError(f"{folder / 'val2017'}: {len(missing)} captioned images are missing, e.g. {missing[0]}")
    return LabeledImages(
        "COCO val2017", (), tuple(folder / "val2017" / files[image] for image in ids), tuple(range(len(ids))),
        tuple(tuple(captions[image]) for image in ids),
    )
