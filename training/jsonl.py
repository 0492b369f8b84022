"""JSON Lines reading shared by pairs files and caption files: errors name the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


def json_lines(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, decoded value) per non-blank line; bad JSON is a ValueError naming the line."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not valid JSON ({error})") from None
