"""The sample type every source yields, the registry that loads sources by name, and the
few helpers the sources share (split rules, subset selection, image opening)."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from models.images import to_rgb

SPLITS = ("train", "test")

# Registry name -> "module:function" inside this package. Modules are imported on first use,
# so loading one source never imports the libraries of the others.
_REGISTRY = {
    "scenes": "scenes:load",
    "fashion-mnist": "fashion_mnist:load",
    "cpunks": "cpunks:load",
    "photos": "photos:load",
    "coco": "captions:load_coco",
    "jsonl": "captions:load_jsonl",
    "emoji": "emoji:load",
    "clipart": "clipart:load",
}


@dataclass(frozen=True)
class Sample:
    """One image with its caption and the structured facts the caption was written from.

    `attributes` holds JSON-ready values (str, int, bool, lists of str); each source
    documents its keys. Pairs of samples differ in known ways through their attributes.
    """

    image: Image.Image  # RGB
    caption: str
    attributes: Mapping[str, object]
    source: str  # the registry name, e.g. "cpunks"
    uid: str  # stable and unique over all sources and splits, e.g. "cpunks:1234"

    def __post_init__(self) -> None:
        if self.image.mode != "RGB":
            raise ValueError(f"sample {self.uid}: image must be RGB, got mode {self.image.mode}")


def available_sources() -> list[str]:
    """Names accepted by `load_source`."""
    return sorted(_REGISTRY)


def load_source(
    name: str,
    *,
    split: str = "train",
    limit: int | None = None,
    seed: int = 0,
    **options: object,
) -> list[Sample]:
    """Load the samples of one split of source `name`, images decoded in memory.

    Splits: "train" and "test" are deterministic and disjoint for every source; each
    source's module documents its rule (fixed id ranges, the dataset's own split, or a hash
    of the image key).
    limit: at most this many samples. When the split is larger, a subset chosen by `seed`,
    kept in the source's order. Procedural `scenes` instead draw exactly `limit` new
    samples (`seed` then selects the content).
    options: source-specific keyword arguments (e.g. `root=` for a data folder, `path=` for
    a JSONL file); an unknown option raises ValueError naming the valid ones.
    """
    loader = _loader(name)
    check_split(split)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or >= 0, got {limit}")
    try:
        inspect.signature(loader).bind(split, limit=limit, seed=seed, **options)
    except TypeError as error:
        valid = _option_names(loader)
        raise ValueError(f"bad options for source {name!r}: {error}; its options: {valid or 'none'}") from None
    return loader(split, limit=limit, seed=seed, **options)


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")


def select_indices(count: int, limit: int | None, seed: int) -> list[int]:
    """Indices 0..count-1, or a seeded subset of `limit` of them in ascending order."""
    if limit is None or limit >= count:
        return list(range(count))
    return sorted(random.Random(seed).sample(range(count), limit))


def hashed_split(key: str, test_fraction: float) -> str:
    """The split of `key`: "test" for a stable pseudo-random `test_fraction` of keys.

    Keyed by image (not by caption) so that every sample of one image lands in the same
    split. Uses sha256, so the answer never depends on the interpreter's hash seed.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


def open_rgb(path: Path) -> Image.Image:
    """Decode an image file fully into memory as RGB (transparency composited on white)."""
    with Image.open(path) as image:
        image.load()
        rgb = to_rgb(image)
        return rgb.copy() if rgb is image else rgb


def _loader(name: str) -> Callable[..., list[Sample]]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown source {name!r}; available: {', '.join(available_sources())}")
    module_name, function_name = _REGISTRY[name].split(":")
    module = importlib.import_module(f"{__package__}.{module_name}")
    return getattr(module, function_name)


def _option_names(loader: Callable[..., object]) -> list[str]:
    parameters = inspect.signature(loader).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in ("limit", "seed")]
