"""Exact difference texts from structured labels: no LLM, no errors of direction.

Each text states how the FIRST image differs from the SECOND. Scenes differ in colour, shape,
size, count, position and brightness; CryptoPunks in type and accessories (presence of an
object); Fashion-MNIST and clip art in what they show; edit pairs (`training.edit_pairs`, any source) in
how one picture looks. Wording varies by a seeded choice of templates so
the text tower learns the difference, not one sentence.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from training.describers.base import DescriberOptions, PairInput
from training.edit_pairs import edit_difference
from training.sources.scenes import POSITION_PHRASES

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def _plural(shape: str) -> str:
    return f"{shape}s"


def _objects(count: int) -> str:
    return f"{NUMBER_WORDS[count]} object{'' if count == 1 else 's'}"


def scene_differences(first: Mapping, second: Mapping, rng: random.Random) -> list[str]:
    """One clause per differing fact of two scenes, each in first-versus-second order."""
    clauses = []
    if first["color"] != second["color"]:
        clauses.append(rng.choice([
            f"the first image has {first['color']} shapes, while the second has {second['color']} shapes",
            f"the shapes are {first['color']} in the first image instead of {second['color']}",
            f"the first is {first['color']} where the second is {second['color']}",
        ]))
    if first["shape"] != second["shape"]:
        clauses.append(rng.choice([
            f"the first image shows {_plural(first['shape'])}, while the second shows {_plural(second['shape'])}",
            f"there are {_plural(first['shape'])} in the first image instead of {_plural(second['shape'])}",
        ]))
    if first["size"] != second["size"]:
        bigger = first["size"] == "large"
        clauses.append(rng.choice([
            f"the objects in the first image are {'larger' if bigger else 'smaller'} than in the second",
            f"the first image has {'bigger' if bigger else 'smaller'} shapes than the second",
            f"the first shows {first['size']} objects, while the second shows {second['size']} ones",
        ]))
    if first["count"] != second["count"]:
        more = first["count"] > second["count"]
        clauses.append(rng.choice([
            f"the first image has {'more' if more else 'fewer'} objects than the second",
            f"there {'is' if first['count'] == 1 else 'are'} {_objects(first['count'])} in the first image "
            f"instead of {NUMBER_WORDS[second['count']]}",
            f"the first contains {'more' if more else 'fewer'} shapes than the second",
        ]))
    if first["position"] != second["position"]:
        clauses.append(rng.choice([
            f"the objects are {POSITION_PHRASES[first['position']]} in the first image, "
            f"but {POSITION_PHRASES[second['position']]} in the second",
            f"the first image has its shapes {POSITION_PHRASES[first['position']]} "
            f"instead of {POSITION_PHRASES[second['position']]}",
        ]))
    if first["background"] != second["background"]:
        darker = first["background"] == "dark"
        clauses.append(rng.choice([
            f"the first image is {'darker' if darker else 'brighter'} than the second",
            f"the first image has a {first['background']} background, while the second has a "
            f"{second['background']} one",
        ]))
    return clauses


def _accessory_list(names: Sequence[str]) -> str:
    from training.sources.cpunks import accessory_phrase

    phrases = [accessory_phrase(name) for name in names]
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def punk_differences(first: Mapping, second: Mapping, rng: random.Random) -> list[str]:
    """Type and accessories that one portrait has and the other lacks."""
    from training.sources.cpunks import TYPE_PHRASES

    clauses = []
    if first["type"] != second["type"]:
        clauses.append(
            f"the first portrait shows {TYPE_PHRASES[first['type']]}, while the second shows "
            f"{TYPE_PHRASES[second['type']]}"
        )
    only_first = sorted(set(first["accessories"]) - set(second["accessories"]))
    only_second = sorted(set(second["accessories"]) - set(first["accessories"]))
    if only_first and only_second:
        clauses.append(rng.choice([
            f"the first has {_accessory_list(only_first)}, while the second has {_accessory_list(only_second)}",
            f"the first wears {_accessory_list(only_first)} instead of {_accessory_list(only_second)}",
        ]))
    elif only_first:
        clauses.append(rng.choice([
            f"the first has {_accessory_list(only_first)}, while the second does not",
            f"only the first one has {_accessory_list(only_first)}",
        ]))
    elif only_second:
        clauses.append(rng.choice([
            f"the second has {_accessory_list(only_second)}, while the first does not",
            f"the first is missing {_accessory_list(only_second)}, unlike the second",
        ]))
    return clauses


def fashion_differences(first: Mapping, second: Mapping, rng: random.Random) -> list[str]:
    from training.sources.fashion_mnist import FASHION_NOUNS

    if first["label_index"] == second["label_index"]:
        return []
    a, b = FASHION_NOUNS[first["label_index"]], FASHION_NOUNS[second["label_index"]]
    return [rng.choice([
        f"the first image shows {a}, while the second shows {b}",
        f"the first is {a} instead of {b}",
    ])]


def clipart_differences(first: Mapping, second: Mapping, rng: random.Random) -> list[str]:
    if first["phrase"] == second["phrase"]:
        return []
    a, b = first["phrase"], second["phrase"]
    return [rng.choice([
        f"the first image shows {a}, while the second shows {b}",
        f"the first is a drawing of {a} rather than {b}",
        f"the second shows {b} where the first shows {a}",
    ])]


_BY_SOURCE = {
    "scenes": scene_differences,
    "cpunks": punk_differences,
    "fashion-mnist": fashion_differences,
    "clipart": clipart_differences,
}


class AttributeDescriber:
    """Templated differences for sources with structured attributes (scenes, cpunks, fashion, clip art)."""

    name = "attributes"
    min_chars = 0  # exact templated texts: a short one is as true as a long one

    def __init__(self, seed: int = 0, max_clauses: int = 2):
        self.rng = random.Random(seed)
        self.max_clauses = max_clauses

    @classmethod
    def from_options(cls, options: DescriberOptions) -> AttributeDescriber:
        return cls(seed=options.seed, max_clauses=options.max_clauses)

    def describe(self, pairs: Sequence[PairInput]) -> list[str | None]:
        return [self._describe_one(pair) for pair in pairs]

    def _describe_one(self, pair: PairInput) -> str | None:
        clauses = self._clauses(pair)
        if not clauses:
            return None  # no known difference: nothing true to say
        self.rng.shuffle(clauses)
        text = "; ".join(clauses[: self.max_clauses])
        return text[0].upper() + text[1:] + "."

    def _clauses(self, pair: PairInput) -> list[str]:
        first, second = pair.attributes
        if "edit" in first and first.get("edit") == second.get("edit"):  # one picture, edited twice
            return [edit_difference(first, second, self.rng)]
        differences = _BY_SOURCE.get(pair.source)
        if differences is None:
            raise ValueError(
                f"the attributes describer knows sources {', '.join(_BY_SOURCE)}; got {pair.source!r} "
                "(edit pairs: any source)"
            )
        return differences(first, second, self.rng)
