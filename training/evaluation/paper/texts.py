"""LLM-written difference texts for the paper suite, cached in one JSON Lines file.

The CUB task and comparative prompting need a text saying how one caption's (or class's)
image differs from another's. They are written once by a describer of `pcclip pairs`
(`training.describers`: "openai" for any OpenAI-compatible server, as the paper's Llama-2-13B-chat;
"local" for the small model here), asked the paper's question, cleaned by the paper's filter
(`training.text_filter.clean_text`), and appended to the cache as
{"first": …, "second": …, "text": …}. A rerun reads them back, so results are repeatable and
need no LLM; pairs the describer answered unusably are not stored and are asked again next time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from training.describers.base import Describer, PairInput
from training.jsonl import json_lines
from training.text_filter import PAPER_MIN_CHARS, clean_text

Pair = tuple[str, str]  # (first caption or class name, second)


class DifferenceTexts:
    def __init__(self, path: Path, describer: Describer | None = None, min_chars: int = PAPER_MIN_CHARS):
        self.path = Path(path)
        self.describer = describer
        self.min_chars = min_chars
        self._texts: dict[Pair, str] = {}
        if self.path.is_file():
            for number, record in json_lines(self.path):
                if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("first", "second",
                                                                                                     "text")):
                    raise ValueError(f"{self.path}, line {number}: expected {{first, second, text}} strings")
                self._texts[(record["first"], record["second"])] = record["text"]

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, pairs: Sequence[Pair], source: str = "") -> list[str | None]:
        """The text of each pair: cached, else written by the describer (None where there is no
        describer or its answer did not pass the filter)."""
        missing = list(dict.fromkeys(pair for pair in pairs if pair not in self._texts))
        if missing and self.describer is not None:
            answers = self.describer.describe([PairInput(pair, ({}, {}), source) for pair in missing])
            written = {}
            for pair, answer in zip(missing, answers, strict=True):
                cleaned = clean_text(answer, self.min_chars)[0] if answer else None
                if cleaned:
                    written[pair] = cleaned
            self._append(written)
        return [self._texts.get(pair) for pair in pairs]

    def _append(self, written: dict[Pair, str]) -> None:
        if not written:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            for (first, second), text in written.items():
                handle.write(json.dumps({"first": first, "second": second, "text": text}) + "\n")
        self._texts.update(written)
