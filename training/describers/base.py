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


@dataclass(frozen=True)
class DescriberOptions:
    """The settings `pcclip pairs` and `pcclip eval` expose; each describer's `from_options` takes
    those it uses. Finer settings are constructor arguments (`create_describer(name, **kwargs)`)."""

    seed: int = 0  # attributes: wording; local: sampling
    max_clauses: int = 2  # attributes: differences stated per text
    base_url: str = ""  # openai: the server's API root, e.g. http://llm:8000/v1
    llm_model: str = ""  # openai: the model name the server serves
    api_key: str | None = None  # openai: bearer key
    concurrency: int = 8  # openai: requests in flight


class Describer(Protocol):
    name: str
    min_chars: int  # texts shorter than this are dropped by default (`training.text_filter`)

    def describe(self, pairs: Sequence[PairInput]) -> list[str | None]:
        """One difference text per pair (first relative to second); None where none was written."""
        ...
