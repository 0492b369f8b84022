"""Public-domain clip art from Debian's `openclipart-png`, captioned from its category folders.

    apt-get install openclipart-png        # 131 MB, PNGs under /usr/share/openclipart/png

The file names are mostly authors' tags in several languages, so captions come from the folder
a picture sits in (`animals/mammals/dogs` -> "a dog"), through `FOLDER_PHRASES` (the longest
listed prefix wins). Folders without a listed phrase (patterns, gradients, unsorted, logos) are
left out, and so is any file over `MAX_PIXELS`: a few are posters of hundreds of megapixels.
Every phrase keeps at most `PER_PHRASE` pictures (a seeded choice), so the 1,378 stars do not
drown the 44 smileys.

Captions: "a clip-art drawing of a dog". Attributes: {"phrase": "a dog", "category": the top
folder, e.g. "animals", "folder": the folder inside the package}. uid "clipart:<relative path>".
Splits: a stable hash of the relative path puts 10% of the pictures in "test".
"""

from __future__ import annotations

import random
import warnings
from collections import defaultdict
from pathlib import Path

from PIL import Image

from training.sources.base import Sample, hashed_split, open_rgb, select_indices

DEFAULT_ROOT = Path("/usr/share/openclipart/png")
TEST_FRACTION = 0.1
MAX_PIXELS = 4_000_000
KEEP_SIDE = 256  # pictures are kept at most this large: the tiny towers read 64 x 64
PER_PHRASE = 150
FOLDER_PHRASES = {
    "animals": "an animal",
    "animals/birds": "a bird",
    "animals/birds/penguin": "a penguin",
    "animals/bugs": "an insect",
    "animals/dinosaurs": "a dinosaur",
    "animals/fish": "a fish",
    "animals/mammals": "a mammal",
    "animals/mammals/bears": "a bear",
    "animals/mammals/big_cats": "a big cat",
    "animals/mammals/dogs": "a dog",
    "animals/mammals/horses": "a horse",
    "animals/mammals/housecats": "a cat",
    "buildings": "a building",
    "buildings/furniture": "a piece of furniture",
    "buildings/homes": "a house",
    "computer/buttons": "a button",
    "computer/folders": "a folder icon",
    "computer/hardware": "computer hardware",
    "computer/icons": "a computer icon",
    "containers": "a container",
    "decorations": "a decoration",
    "education/books": "a book",
    "electronics": "an electronic device",
    "electronics/battery": "a battery",
    "electronics/bulb": "a light bulb",
    "food": "food",
    "food/beverages": "a drink",
    "food/breads_and_carbs": "bread",
    "food/dairy": "a dairy product",
    "food/desserts": "a dessert",
    "food/fruit": "a fruit",
    "food/meats_and_eggs": "meat or eggs",
    "food/vegetables": "a vegetable",
    "geography": "a map",
    "geography/astronomy": "a planet or a star in space",
    "office": "an office item",
    "office/telephone": "a telephone",
    "people": "a person",
    "people/bodypart": "a body part",
    "people/clothing": "a piece of clothing",
    "people/clothing/hats": "a hat",
    "people/smilies": "a smiley face",
    "people/stickmen": "a stick figure",
    "plants": "a plant",
    "plants/flowers": "a flower",
    "plants/trees": "a tree",
    "recreation/games/cards": "a playing card",
    "recreation/games/chess": "a chess piece",
    "recreation/holiday": "a holiday decoration",
    "recreation/music": "music",
    "recreation/party": "a party",
    "recreation/religion": "a religious symbol",
    "recreation/sports": "a sport",
    "recreation/toys": "a toy",
    "science/astronomy": "a planet or a star in space",
    "shapes": "a shape",
    "shapes/arrows": "an arrow",
    "shapes/callouts": "a speech bubble",
    "shapes/flowchart": "a flowchart",
    "shapes/jigsaw": "a jigsaw puzzle piece",
    "shapes/stars": "a star",
    "signs_and_symbols": "a sign or a symbol",
    "signs_and_symbols/clocks": "a clock",
    "signs_and_symbols/flags": "a flag",
    "signs_and_symbols/flags/semaphore": "a signal flag",
    "signs_and_symbols/hazard": "a hazard sign",
    "signs_and_symbols/map_symbols": "a map symbol",
    "signs_and_symbols/money": "money",
    "signs_and_symbols/weather": "a weather symbol",
    "tools": "a tool",
    "tools/weapons": "a weapon",
    "transportation": "a vehicle",
    "transportation/aiga-symbols": "a travel sign",
    "transportation/boating": "a boat",
    "transportation/roadsigns": "a road sign",
    "transportation/vehicles": "a vehicle",
}
_INSTALL = "apt-get install openclipart-png"


def load(split: str, *, limit: int | None, seed: int, root: str | Path | None = None) -> list[Sample]:
    folder = Path(root) if root is not None else DEFAULT_ROOT
    if not folder.is_dir():
        raise FileNotFoundError(f"no clip art at {folder}. To fetch it: {_INSTALL}")
    files = [entry for entry in catalogue(folder, seed) if hashed_split(entry[0].as_posix(), TEST_FRACTION) == split]
    samples = []
    for index in select_indices(len(files), limit, seed):
        relative, phrase = files[index]
        image = open_rgb(folder / relative)
        image.thumbnail((KEEP_SIDE, KEEP_SIDE))
        samples.append(
            Sample(
                image=image,
                caption=f"a clip-art drawing of {phrase}",
                attributes={"phrase": phrase, "category": relative.parts[0], "folder": relative.parent.as_posix()},
                source="clipart",
                uid=f"clipart:{relative.as_posix()}",
            )
        )
    return samples


def phrase_of(folder: str) -> str | None:
    """The phrase of the longest prefix of `folder` listed in FOLDER_PHRASES, or None."""
    parts = folder.split("/")
    for end in range(len(parts), 0, -1):
        phrase = FOLDER_PHRASES.get("/".join(parts[:end]))
        if phrase is not None:
            return phrase
    return None


def catalogue(folder: Path, seed: int) -> list[tuple[Path, str]]:
    """(relative path, phrase) of the usable pictures, at most PER_PHRASE per phrase, sorted by path."""
    by_phrase: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(folder.rglob("*.png")):
        relative = path.relative_to(folder)
        phrase = phrase_of(relative.parent.as_posix())
        if phrase is not None and _small_enough(path):
            by_phrase[phrase].append(relative)
    rng = random.Random(seed)
    chosen = {
        phrase: rng.sample(paths, PER_PHRASE) if len(paths) > PER_PHRASE else paths
        for phrase, paths in by_phrase.items()
    }
    return sorted((path, phrase) for phrase, paths in chosen.items() for path in paths)


def _small_enough(path: Path) -> bool:
    """Reads only the header: whether the picture has at most MAX_PIXELS (and is an image at all)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, never decoded
            with Image.open(path) as image:
                width, height = image.size
    except (OSError, Image.DecompressionBombError):
        return False
    return width * height <= MAX_PIXELS
