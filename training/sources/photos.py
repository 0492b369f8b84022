"""Real photos bundled inside scikit-image and scikit-learn, with hand-written captions.

The image files are read straight from the installed packages' data folders with PIL, so
nothing is imported from either library and nothing can reach for the network (several
`skimage.data` images are downloads; only files shipped in the wheel are listed here).

Splits: a fixed handful (`TEST_PHOTOS`) is held out as "test"; the rest is "train".
Attributes: {"name": the photo's name, "package": "scikit-image" or "scikit-learn"}.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from training.sources.base import Sample, open_rgb, select_indices

# name -> (package, file inside its data folder, caption)
PHOTOS: dict[str, tuple[str, str, str]] = {
    "astronaut": (
        "skimage",
        "astronaut.png",
        "a photo of a smiling astronaut in an orange spacesuit next to an American flag",
    ),
    "brick": ("skimage", "brick.png", "a black and white photo of a brick wall"),
    "camera": (
        "skimage",
        "camera.png",
        "a black and white photo of a man looking through a camera on a tripod",
    ),
    "cell": ("skimage", "cell.png", "a microscope image of a single round cell"),
    "chelsea": ("skimage", "chelsea.png", "a close-up photo of the face of a tabby cat"),
    "clock": ("skimage", "clock_motion.png", "a blurry black and white photo of a wall clock"),
    "coffee": (
        "skimage",
        "coffee.png",
        "a photo of a cup of coffee on a red saucer on a wooden table",
    ),
    "coins": ("skimage", "coins.png", "a black and white photo of rows of old coins"),
    "colorwheel": (
        "skimage",
        "color.png",
        "a color wheel with all the colors of the rainbow on a black background",
    ),
    "grass": ("skimage", "grass.png", "a black and white close-up photo of grass"),
    "gravel": ("skimage", "gravel.png", "a black and white close-up photo of gravel"),
    "horse": ("skimage", "horse.png", "a black silhouette of a horse on a white background"),
    "hubble_deep_field": (
        "skimage",
        "hubble_deep_field.jpg",
        "a telescope image of many distant galaxies in a black sky",
    ),
    "immunohistochemistry": (
        "skimage",
        "ihc.png",
        "a microscope image of tissue stained brown and blue",
    ),
    "logo": (
        "skimage",
        "logo.png",
        "a round logo, half green and half orange, with a snake drawn on it",
    ),
    "microaneurysms": (
        "skimage",
        "microaneurysms.png",
        "a grey close-up image of blood vessels in the retina of an eye",
    ),
    "moon": ("skimage", "moon.png", "a black and white photo of the cratered surface of the moon"),
    "motorcycle": (
        "skimage",
        "motorcycle_left.png",
        "a photo of a red motorcycle parked in a garage",
    ),
    "page": ("skimage", "page.png", "a photo of a printed page of text"),
    "phantom": (
        "skimage",
        "phantom.png",
        "a synthetic scan of a head: a white oval with grey and black ellipses inside",
    ),
    "retina": (
        "skimage",
        "retina.jpg",
        "a photo of the back of a human eye, orange-red with dark blood vessels",
    ),
    "rocket": (
        "skimage",
        "rocket.jpg",
        "a photo of a rocket on a launch pad at night between two towers",
    ),
    "text": (
        "skimage",
        "text.png",
        "a black and white photo of handwritten math equations on lined paper",
    ),
    "china": (
        "sklearn",
        "images/china.jpg",
        "a photo of a Chinese temple with curved roofs among trees by a lake",
    ),
    "flower": ("sklearn", "images/flower.jpg", "a close-up photo of an orange dahlia flower"),
}
TEST_PHOTOS = ("coffee", "horse", "moon", "china")
_PACKAGE_NAMES = {"skimage": "scikit-image", "sklearn": "scikit-learn"}
_DATA_FOLDERS = {"skimage": "data", "sklearn": "datasets"}


def load(split: str, *, limit: int | None, seed: int) -> list[Sample]:
    names = [name for name in PHOTOS if (name in TEST_PHOTOS) == (split == "test")]
    samples = []
    for index in select_indices(len(names), limit, seed):
        name = names[index]
        package, file, caption = PHOTOS[name]
        samples.append(
            Sample(
                image=open_rgb(_data_folder(package) / file),
                caption=caption,
                attributes={"name": name, "package": _PACKAGE_NAMES[package]},
                source="photos",
                uid=f"photos:{name}",
            )
        )
    return samples


def _data_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {_PACKAGE_NAMES[package]} is not installed: `pip install {_PACKAGE_NAMES[package]}`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / _DATA_FOLDERS[package]
