"""Pairs of images and the text that says how the first differs from the second.

A pairs file is JSONL, one pair a line:
  {"first": "images/3f2a….png", "second": "images/9b01….png", "text": "…",
   "captions": ["…", "…"], "attributes": [{…}, {…}], "describer": "attributes"}
Image paths are relative to the pairs file (absolute paths are kept as they are).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.jsonl import json_lines


@dataclass(frozen=True)
class PairRecord:
    first: str
    second: str
    text: str
    captions: tuple[str, str] = ("", "")
    attributes: tuple[dict[str, Any], dict[str, Any]] = field(default_factory=lambda: ({}, {}))
    describer: str = ""

    def paths(self, root: Path) -> tuple[Path, Path]:
        """The two image files, resolved against the pairs file's folder."""
        return root / self.first, root / self.second


def sample_pairs(n: int, budget: int, seed: int) -> list[tuple[int, int]]:
    """Up to `budget` distinct ordered pairs (i, j) of items 0..n-1, i ≠ j, in a seeded order.

    Pairs grow quadratically, so they are drawn, not enumerated: rejection sampling while the
    budget is under half of all n·(n−1) ordered pairs, a shuffled enumeration above that.
    Both orders of one pair may appear; a pair never appears twice.
    """
    total = n * (n - 1)
    budget = min(budget, total)
    rng = random.Random(seed)
    if budget * 2 > total:
        every = [(i, j) for i in range(n) for j in range(n) if i != j]
        rng.shuffle(every)
        return every[:budget]
    chosen: dict[tuple[int, int], None] = {}
    while len(chosen) < budget:
        i, j = rng.randrange(n), rng.randrange(n)
        if i != j:
            chosen.setdefault((i, j), None)
    return list(chosen)


def write_pairs(path: Path, records: Iterable[PairRecord], *, append: bool = False) -> int:
    count = 0
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_pairs(path: Path) -> list[PairRecord]:
    """Read a pairs file; a malformed line is an error naming the line."""
    records = []
    for number, row in json_lines(path):
        if not isinstance(row, dict):
            raise ValueError(f"{path}, line {number}: not a pair record (a JSON object, not {type(row).__name__})")
        try:
            records.append(
                PairRecord(
                    first=row["first"],
                    second=row["second"],
                    text=row["text"],
                    captions=tuple(row.get("captions", ("", ""))),
                    attributes=tuple(row.get("attributes", ({}, {}))),
                    describer=row.get("describer", ""),
                )
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}, line {number}: not a pair record ({error!r})") from error
    return records


def split_by_image(records: Sequence[PairRecord], val_fraction: float, seed: int):
    """Train and validation pairs that share no image; pairs across the split are dropped."""
    images = sorted({path for record in records for path in (record.first, record.second)})
    rng = random.Random(seed)
    held_out = set(rng.sample(images, round(len(images) * val_fraction)))
    train = [r for r in records if r.first not in held_out and r.second not in held_out]
    val = [r for r in records if r.first in held_out and r.second in held_out]
    return train, val
