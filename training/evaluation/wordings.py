"""Difference texts in wordings the finetune never saw, for the generalization suite.

Every training text of `tiny` (attribute describer, minimal scene pairs, SmolLM2 answers) names
the pictures "the first (image)" and "the second (image)" and joins facts with "while",
"instead of", "but", "unlike" or "only the first". The templates here name them "picture one /
picture two", "image A / image B" or "the former / the latter", and join facts with
"whereas", "relative to", semicolons or "lacks". `UNSEEN_CHECK` lists the training words no
text here may contain (a test holds every kind to it).

A template family is a tuple of three sentences, one per way of naming the pictures; a pair's
two orders use the same family and the same naming, so only the stated fact flips.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

UNSEEN_CHECK = ("first", "second", "while", "instead of", "unlike", " but ")

# "Picture one is darker than picture two." — x: a comparative ("darker", "lower in contrast").
COMPARATIVE = (
    "Picture one is {x} than picture two.",
    "Relative to image B, image A is {x}.",
    "Of the two pictures, the former is {x} than the latter.",
)
# A fact of each picture side by side — a, b: noun phrases ("food or drink", "a flag").
SHOWS = (
    "Picture one shows {a}; picture two shows {b}.",
    "Image A depicts {a}, whereas image B depicts {b}.",
    "The former pictures {a} and the latter pictures {b}.",
)
# The colour of one object — noun: "heart"; a, b: colour words.
COLOUR = (
    "The {noun} in picture one is {a}; in picture two it is {b}.",
    "Image A has a {a} {noun}, whereas image B has a {b} one.",
    "The former's {noun} is {a} and the latter's is {b}.",
)
# Size of one object — x: "bigger" / "smaller".
SIZE = (
    "The {noun} is {x} in picture one than in picture two.",
    "Relative to image B, image A shows a {x} {noun}.",
    "The former shows a {x} {noun} than the latter.",
)
# Number of objects — x: "more" / "fewer"; things: a plural ("copies of the apple", "stars").
COUNT = (
    "Picture one holds {x} {things} than picture two.",
    "Relative to image B, image A has {x} {things}.",
    "The former shows {x} {things} than the latter.",
)
# Where one object sits — a, b: "toward the left", "near the top".
POSITION = (
    "In picture one the {noun} sits {a}; in picture two it sits {b}.",
    "Image A puts the {noun} {a}, whereas image B puts it {b}.",
    "The former has the {noun} {a} and the latter has it {b}.",
)
# Skin tone of one figure — x: "darker" / "lighter".
SKIN = (
    "The skin in picture one is {x} than in picture two.",
    "Relative to image B, image A shows {x} skin.",
    "The former shows {x} skin than the latter.",
)
# An object in one picture only — thing: "a cap", "an apple"; forward = the extra one is in picture one.
PRESENT = (
    "Picture one contains {thing}, which picture two lacks.",
    "Image A has {thing} more than image B.",
    "The former includes {thing}; the latter does not.",
)
ABSENT = (
    "Picture one lacks {thing}, which picture two contains.",
    "Image A is missing {thing} that image B has.",
    "The former has no {thing}; the latter does.",
)
POSITION_WORDS = {
    "left": "toward the left",
    "right": "toward the right",
    "top": "near the top",
    "bottom": "near the bottom",
}


def ordered(
    rng: random.Random,
    forward: Sequence[str],
    backward: Sequence[str],
    forward_fields: Mapping[str, str],
    backward_fields: Mapping[str, str],
) -> tuple[str, str]:
    """(text for picture one vs two, text for the pair swapped), one naming drawn by `rng`."""
    naming = rng.randrange(len(forward))
    return sentence(forward[naming], forward_fields), sentence(backward[naming], backward_fields)


def comparative(
    rng: random.Random, more: str, less: str, templates: Sequence[str] = COMPARATIVE, **fields: str
) -> tuple[str, str]:
    """Texts for a pair whose picture one is `more` (x=more) than picture two, and swapped (x=less)."""
    return ordered(rng, templates, templates, {**fields, "x": more}, {**fields, "x": less})


def contrast(rng: random.Random, a: str, b: str, templates: Sequence[str] = SHOWS, **fields: str) -> tuple[str, str]:
    """Texts for a pair whose picture one has fact `a` and picture two fact `b`, and swapped."""
    return ordered(rng, templates, templates, {**fields, "a": a, "b": b}, {**fields, "a": b, "b": a})


def presence(rng: random.Random, thing: str) -> tuple[str, str]:
    """Texts for a pair whose picture one alone holds `thing`, and swapped."""
    return ordered(rng, PRESENT, ABSENT, {"thing": thing}, {"thing": thing})


def sentence(template: str, fields: Mapping[str, str]) -> str:
    """`template` filled in, its first letter upper case."""
    text = template.format(**fields)
    return text[0].upper() + text[1:]
