"""User data: image folders with captions, as a COCO captions JSON or as JSONL.

- `coco`: `annotations=` a COCO-format captions file
  (`{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}`) and
  `images=` the folder holding the files. One sample per image that has a caption; its
  caption is the image's first annotation. Attributes: {"image_id", "file_name",
  "captions": every caption of the image, in file order}. uid "coco:<image id>".
- `jsonl`: `path=` a file of lines `{"image": path, "caption": str, ...}`, image paths
  relative to the JSONL file's folder. One sample per line; keys besides "image" and
  "caption" are kept as attributes, next to "image" (the path as written).
  uid "jsonl:<file name>:<line number>".

Splits: a stable hash of the image's file name puts `test_fraction` of the images (default
10%) in "test", so every caption of one image lands in the same split.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from training.jsonl import json_lines
from training.sources.base import Sample, hashed_split, open_rgb, select_indices

DEFAULT_TEST_FRACTION = 0.1


def load_coco(
    split: str,
    *,
    limit: int | None,
    seed: int,
    annotations: str | Path,
    images: str | Path,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> list[Sample]:
    annotations, images = Path(annotations), Path(images)
    if not images.is_dir():
        raise FileNotFoundError(f"COCO image folder {images} not found")
    data = _read_json(annotations)
    records = _coco_records(data, annotations)  # (image id, file name, captions)
    records = [r for r in records if hashed_split(r[1], test_fraction) == split]
    samples = []
    for index in select_indices(len(records), limit, seed):
        image_id, file_name, captions = records[index]
        samples.append(
            Sample(
                image=_open_image(images / file_name, f"image id {image_id} of {annotations}"),
                caption=captions[0],
                attributes={"image_id": image_id, "file_name": file_name, "captions": captions},
                source="coco",
                uid=f"coco:{image_id}",
            )
        )
    return samples


def load_jsonl(
    split: str,
    *,
    limit: int | None,
    seed: int,
    path: str | Path,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> list[Sample]:
    path = Path(path)
    rows = [row for row in _jsonl_rows(path) if hashed_split(row[1]["image"], test_fraction) == split]
    samples = []
    for index in select_indices(len(rows), limit, seed):
        line_number, row = rows[index]
        where = f"line {line_number} of {path}"
        attributes = {key: value for key, value in row.items() if key != "caption"}
        samples.append(
            Sample(
                image=_open_image(path.parent / row["image"], where),
                caption=row["caption"].strip(),
                attributes=attributes,
                source="jsonl",
                uid=f"jsonl:{path.name}:{line_number}",
            )
        )
    return samples


def _read_json(path: Path) -> object:
    if not path.is_file():
        raise FileNotFoundError(f"annotations file {path} not found")
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None


def _coco_records(data: object, path: Path) -> list[tuple[int, str, list[str]]]:
    """(image id, file name, captions) per captioned image, in the file's image order."""
    if not isinstance(data, dict) or not all(isinstance(data.get(key), list) for key in ("images", "annotations")):
        raise ValueError(f"{path}: expected an object with lists 'images' and 'annotations'")
    file_names: dict[int, str] = {}
    for i, image in enumerate(data["images"]):
        if not (
            isinstance(image, dict) and isinstance(image.get("id"), int) and isinstance(image.get("file_name"), str)
        ):
            raise ValueError(f"{path}: images[{i}] needs an integer 'id' and a string 'file_name'")
        file_names[image["id"]] = image["file_name"]
    captions: dict[int, list[str]] = {}
    for i, annotation in enumerate(data["annotations"]):
        if not (
            isinstance(annotation, dict)
            and isinstance(annotation.get("image_id"), int)
            and isinstance(annotation.get("caption"), str)
            and annotation["caption"].strip()
        ):
            raise ValueError(f"{path}: annotations[{i}] needs an integer 'image_id' and a non-empty 'caption'")
        if annotation["image_id"] not in file_names:
            raise ValueError(
                f"{path}: annotations[{i}] refers to image id {annotation['image_id']}, which is not in 'images'"
            )
        captions.setdefault(annotation["image_id"], []).append(annotation["caption"].strip())
    return [(i, name, captions[i]) for i, name in file_names.items() if i in captions]


def _jsonl_rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) per non-blank line, each checked for 'image' and 'caption'."""
    if not path.is_file():
        raise FileNotFoundError(f"JSONL file {path} not found")
    rows = []
    for line_number, row in json_lines(path):
        if not (
            isinstance(row, dict)
            and isinstance(row.get("image"), str)
            and isinstance(row.get("caption"), str)
            and row["caption"].strip()
        ):
            raise ValueError(
                f"{path}, line {line_number}: expected an object with an 'image' path "
                "and a non-empty 'caption' string"
            )
        rows.append((line_number, row))
    return rows


def _open_image(path: Path, where: str) -> Image.Image:
    if not path.is_file():
        raise FileNotFoundError(f"image {path} ({where}) not found")
    return open_rgb(path)
