"""CUB-200-2011 bird photos with the ten captions per image of Reed et al. (2016).

Layout, DATA_ROOT/CUB_200_2011/ (CUB_200_2011.tgz, https://www.vision.caltech.edu/datasets/cub_200_2011/):
  images.txt               "1 001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg"
  image_class_labels.txt   "1 1" — image id, 1-based class id
  classes.txt              "1 001.Black_footed_Albatross"
  train_test_split.txt     "1 0" — image id, 1 = train, 0 = test
  images/<class folder>/<name>.jpg
Captions (cvpr2016_cub.tar.gz of Reed et al., "Learning Deep Representations of Fine-Grained
Visual Descriptions", https://github.com/reedscot/cvpr2016): text_c10/<class folder>/<name>.txt,
one caption per line, found at DATA_ROOT/cvpr2016_cub/text_c10, DATA_ROOT/text_c10 or
DATA_ROOT/CUB_200_2011/text_c10. Without them the images still serve zero-shot and
comparative prompting; the LLM-written difference task needs them.
"""

from __future__ import annotations

from pathlib import Path

from training.evaluation.paper.datasets import LabeledImages, MissingDataset, find_folder, read_rows, require

HOW = "https://www.vision.caltech.edu/datasets/cub_200_2011/ (CUB_200_2011.tgz)"
CAPTIONS_HOW = "Reed et al.'s cvpr2016_cub.tar.gz (https://github.com/reedscot/cvpr2016), its text_c10/ folder"
LAYOUT = ("images.txt", "image_class_labels.txt", "classes.txt", "train_test_split.txt", "images")
CAPTION_FOLDERS = ("cvpr2016_cub/text_c10", "text_c10", "CUB_200_2011/text_c10")


def readable(folder_name: str) -> str:
    """"001.Black_footed_Albatross" -> "Black footed Albatross"."""
    return folder_name.partition(".")[2].replace("_", " ")


def load_cub(root: Path, split: str = "test", captions: bool = False) -> LabeledImages:
    """CUB images of `split` ("train" or "test"); with `captions`, each image's Reed et al. captions
    (MissingDataset when they are not on disk)."""
    folder = require(find_folder(root, ["CUB_200_2011"], "images.txt"), root / "CUB_200_2011", "CUB-200-2011",
                     LAYOUT, HOW)
    classes = {int(number): name for number, name in read_rows(folder / "classes.txt", 2)}
    paths = {int(image): name for image, name in read_rows(folder / "images.txt", 2)}
    labels = {int(image): int(label) for image, label in read_rows(folder / "image_class_labels.txt", 2)}
    training = {int(image): flag == "1" for image, flag in read_rows(folder / "train_test_split.txt", 2)}
    if sorted(classes) != list(range(1, len(classes) + 1)):
        raise ValueError(f"{folder / 'classes.txt'}: class ids are not 1..{len(classes)}")
    if not set(paths) == set(labels) == set(training):
        raise ValueError(f"{folder}: images.txt, image_class_labels.txt and train_test_split.txt list different ids")
    ids = [image for image in sorted(paths) if training[image] == (split == "train")]
    text_root = find_folder(root, CAPTION_FOLDERS, ".") if captions else None
    if captions and text_root is None:
        where = ", ".join(str(root / folder) for folder in CAPTION_FOLDERS)
        raise MissingDataset(f"CUB captions: expected text_c10/ at {where}; get it from {CAPTIONS_HOW}")
    return LabeledImages(
        "CUB-200-2011",
        tuple(readable(classes[number]) for number in sorted(classes)),
        tuple(folder / "images" / paths[image] for image in ids),
        tuple(labels[image] - 1 for image in ids),
        tuple(_captions(text_root, paths[image]) for image in ids) if text_root else (),
    )


def _captions(text_root: Path, relative_image: str) -> tuple[str, ...]:
    path = text_root / Path(relative_image).with_suffix(".txt")
    if not path.is_file():
        raise MissingDataset(f"CUB captions: expected {path}; get it from {CAPTIONS_HOW}")
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
