"""The paper's rule-based filter (each rule passes good text and drops bad) and the direction
check against labels (both ways, for scenes and CryptoPunks)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from training.describers.attributes import AttributeDescriber
from training.describers.base import PairInput
from training.sources.scenes import SceneSpec, sample_scene_spec
from training.text_filter import clean_text, make_filter, reversed_direction

GOOD = "The first image shows three large red circles, while the second shows a single small one."
UNLABELLED = PairInput(captions=("a", "b"), attributes=({}, {}))


# --- the paper's rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"A: {GOOD}", GOOD),
        (f"  A:{GOOD}\n", GOOD),
        (f"Q: What is the visual difference between X and Y? A: {GOOD}", GOOD),  # echoed question
        (f"A: {GOOD} Q: What is the visual difference between two dogs?", GOOD),  # follow-on question
        (f"A: {GOOD} I hope this helps!", GOOD),
        (f"A: {GOOD}\n\nNote: captions do not describe everything.", GOOD),
        (f"#1: {GOOD}", GOOD),
        (f"# {GOOD}", GOOD),
        (f"**{GOOD}**", GOOD),
        ('A: "The first image shows three large red circles,\nwhile   the second shows a single small one."', GOOD),
        ("A: The first photo was taken in 2019 and shows far more people than the second one.",
         "The first photo was taken in 2019 and shows far more people than the second one."),  # 4 digits
        ("A: The first image has more circles... and they are larger than in the second image.",
         "The first image has more circles... and they are larger than in the second image."),
        ("A: The notebook in the first image is open, while the second image shows a closed notebook.",
         "The notebook in the first image is open, while the second image shows a closed notebook."),  # not "Note"
    ],
)
def test_paper_rules_keep_and_clean_good_answers(raw, expected):
    assert clean_text(raw) == (expected, "")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (f"A: <b>{GOOD}</b>", "markup"),
        (f"A: ```{GOOD}```", "markup"),
        (f"A: {GOOD} {{'difference': 1}}", "markup"),
        (f"A: {GOOD} [/INST]", "markup"),
        (f"A: {GOOD} See https://example.com", "markup"),
        (f"A: {GOOD}&nbsp;", "markup"),
        ("A: The first image\u2019s circles are much larger than the second image\u2019s circles.", "non-ascii"),
        (f"A: {GOOD} 1234567890", "digit run"),
        (f"A: {GOOD}!!!!!", "repeated characters"),
        (f"A: {GOOD} ---------", "repeated characters"),
        (f"A: {GOOD} very very very very", "repeated words"),
        ("A: The first one is larger.", "too short"),
        ("A:  \n #", "empty"),
        (f"Note: {GOOD}", "empty"),  # everything from "Note" on is cut
    ],
)
def test_paper_rules_drop_junk_with_a_named_reason(raw, reason):
    assert clean_text(raw) == (None, reason)


def test_junk_after_the_cut_does_not_matter():
    assert clean_text(f"A: {GOOD} Q: <html>\u2019 12345678 !!!!!") == (GOOD, "")


def test_min_chars_is_configurable():
    short = "The first is darker than the second."
    assert make_filter()(short, UNLABELLED) == (None, "too short")
    assert make_filter(min_chars=10)(short, UNLABELLED) == (short, "")


# --- direction against labels: scenes ---------------------------------------------------------


def scene_pair(first: SceneSpec, second: SceneSpec) -> PairInput:
    return PairInput(("", ""), (dataclasses.asdict(first), dataclasses.asdict(second)), "scenes")


THREE_VS_ONE = scene_pair(SceneSpec(count=3), SceneSpec(count=1))
LARGE_VS_SMALL = scene_pair(SceneSpec(size="large"), SceneSpec(size="small"))
DARK_VS_LIGHT = scene_pair(SceneSpec(background="dark", color="white"), SceneSpec(background="light", color="black"))


@pytest.mark.parametrize(
    ("pair", "right", "reversed_"),
    [
        (THREE_VS_ONE, "The first image has more circles than the second.",
         "The first image has fewer circles than the second."),
        (THREE_VS_ONE, "There are more red shapes in the first image than in the second.",
         "There are more red shapes in the second image than in the first."),
        (THREE_VS_ONE, "Compared to the second image, the first one contains more circles.",
         "Compared to the first image, the second one contains more circles."),
        (THREE_VS_ONE, "The second image has fewer objects.",
         "The second image has more objects."),
        (THREE_VS_ONE, "The first image shows a larger number of circles.",
         "The first image shows a smaller number of circles."),
        (THREE_VS_ONE, "There are three circles in the first image instead of one.",
         "There is one red circle instead of three."),
        (THREE_VS_ONE, "The first has three circles, while the second has only one circle.",
         "The first has one circle, while the second has three circles instead of one."),
        (LARGE_VS_SMALL, "The circle in the first image is larger than the one in the second.",
         "The circle in the first image is smaller than the one in the second."),
        (LARGE_VS_SMALL, "The second image has a tinier circle.",
         "The second image has a bigger circle."),
        (LARGE_VS_SMALL, "Two purple squares compared to three smaller green triangles.",
         "Two purple squares compared to three larger green triangles."),
        (LARGE_VS_SMALL, "The first has larger circles than the second's smaller ones.",
         "The first has larger circles than the second's bigger ones."),
        (DARK_VS_LIGHT, "The first image is darker than the second.",
         "The first image is brighter than the second."),
        (DARK_VS_LIGHT, "The first has a dark background, but the second one is lighter.",
         "The first has a dark background, but the second one is darker."),
    ],
)
def test_scene_direction_both_ways(pair, right, reversed_):
    assert not reversed_direction(right, pair)
    assert reversed_direction(reversed_, pair)
    keep = make_filter(min_chars=0)
    assert keep(right, pair) == (right, "")
    assert keep(reversed_, pair) == (None, "reversed direction")
    assert make_filter(min_chars=0, check_direction=False)(reversed_, pair) == (reversed_, "")


@pytest.mark.parametrize(
    "text",
    [
        "The first image has more circles than the second.",  # counts are equal: not judged
        "The first image has darker red circles than the second.",  # a colour, not the brightness
        "The first image has lighter circles than the second.",
        "The first image is more colorful than the second.",  # "more" without a countable noun
    ],
)
def test_facts_that_do_not_differ_or_are_not_comparisons_are_not_judged(text):
    pair = scene_pair(SceneSpec(count=2, background="light"), SceneSpec(count=2, background="dark"))
    assert not reversed_direction(text, pair)


def test_unlabelled_pairs_are_never_judged():
    assert not reversed_direction("The first image has fewer objects than the second.", UNLABELLED)


def test_attribute_texts_are_never_judged_reversed_and_their_swaps_are():
    rng = random.Random(0)
    describer = AttributeDescriber(seed=0, max_clauses=6)
    judged = 0
    for _ in range(300):
        pair = scene_pair(sample_scene_spec(rng), sample_scene_spec(rng))
        text = describer.describe([pair])[0]
        if text is None:
            continue
        assert not reversed_direction(text, pair), text
        swapped = PairInput(pair.captions, pair.attributes[::-1], pair.source)
        judged += reversed_direction(text, swapped)
    assert judged > 200  # most random pairs differ in count, size or background


# --- direction against labels: CryptoPunks ----------------------------------------------------


def punk_pair(first: dict, second: dict) -> PairInput:
    return PairInput(("", ""), (first, second), "cpunks")


EARRING_VS_CAP = punk_pair({"type": "male", "accessories": ["earring", "smile"]},
                           {"type": "male", "accessories": ["capForward", "smile"]})
WOMAN_VS_APE = punk_pair({"type": "female", "accessories": []}, {"type": "ape", "accessories": []})


@pytest.mark.parametrize(
    ("pair", "right", "reversed_"),
    [
        (EARRING_VS_CAP, "The first portrait wears an earring.", "The first portrait wears a cap turned forward."),
        (EARRING_VS_CAP, "Only the second one has a cap turned forward.", "Only the second one has an earring."),
        (EARRING_VS_CAP, "The first wears an earring instead of a cap turned forward.",
         "The first wears a cap turned forward instead of an earring."),
        (EARRING_VS_CAP, "The first man has no cap turned forward.", "The second man has an earring."),
        (WOMAN_VS_APE, "The first portrait shows a woman, while the second shows an ape.",
         "The first portrait shows an ape, while the second shows a woman."),
    ],
)
def test_punk_direction_both_ways(pair, right, reversed_):
    assert not reversed_direction(right, pair)
    assert reversed_direction(reversed_, pair)


def test_punk_clauses_without_an_ordinal_or_with_a_negation_are_not_judged():
    assert not reversed_direction("A man with a cap turned forward.", EARRING_VS_CAP)
    assert not reversed_direction("The first does not wear a cap turned forward.", EARRING_VS_CAP)
    assert not reversed_direction("The first one lacks the earring of the second.", EARRING_VS_CAP)


def test_punk_attribute_texts_are_never_judged_reversed():
    rng = random.Random(1)
    names = ["earring", "capForward", "hotLipstick", "smile", "vr", "mohawkDark", "goat"]
    describer = AttributeDescriber(seed=1, max_clauses=3)
    for _ in range(100):
        first, second = (
            {"type": rng.choice(["alien", "ape", "zombie", "female", "male"]),
             "accessories": sorted(rng.sample(names, rng.randint(0, 3)))}
            for _ in range(2)
        )
        pair = punk_pair(first, second)
        text = describer.describe([pair])[0]
        if text is not None:
            assert not reversed_direction(text, pair), text
