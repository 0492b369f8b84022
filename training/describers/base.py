"""The describer interface: given two captioned images, say how the first differs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

# The paper's question (PAPER.md, "Data generation"); the answer is expected after "A:".
PAPER_PROMPT = "Q: What is the visual difference between an image of {first} and an image of {second}?"


@dataclass(frozen=True)
class PairInput:
    captions: tuple[str, str]
    attributes: tuple[Mapping[str, object], Mapping[str, object]]
    source: str = ""  # the data source both images come from ("" when mixed or unknown)


class Describer(Protocol):
    name: str

    def describe(self, pairs: Sequence[PairInput]) -> list[str | None]:
        """One difference text per pair (first relative to second); None where none was written."""
        ...
