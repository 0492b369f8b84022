"""The metadata rules: one check for the API's door, the store's writes and what an index holds.

Item metadata (and a search filter) is a JSON object of at most `MAX_METADATA_BYTES` as UTF-8
JSON, with objects and arrays nested at most `MAX_METADATA_DEPTH` levels (the object itself is
level 1), string keys, finite numbers (NaN and ±Infinity are not JSON) and valid Unicode strings.
Whatever passes can be logged, snapshotted and served back exactly (pydantic refuses to
serialize values nested ~300 deep; NaN would come back as null).
"""

from __future__ import annotations

import json
import math
from typing import Any

from app.errors import InvalidInput

MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 32
# Names the rules a snapshot's rows were checked under (change it with any rule, so snapshots
# written before are checked again when opened).
METADATA_RULES = f"object, {MAX_METADATA_BYTES} bytes, {MAX_METADATA_DEPTH} deep, string keys, finite, unicode"


_ENCODER = json.JSONEncoder(ensure_ascii=False)  # made once: json.dumps(..., ensure_ascii=False) makes one a call
_CONTAINERS = (dict, list, tuple)


def metadata_problem(metadata: Any) -> str | None:
    """What in `metadata` breaks the rules, in words, or None when it keeps them all."""
    if not isinstance(metadata, dict):
        return f"must be a JSON object, not {type(metadata).__name__}"
    # The size first: it bounds the walk below (and the encoder is C; the walk is not).
    try:
        size = len(_ENCODER.encode(metadata).encode())
    except RecursionError:
        return f"nested more than {MAX_METADATA_DEPTH} levels deep"
    except UnicodeEncodeError:
        return "a string holds an unpaired surrogate (not valid Unicode)"
    except (TypeError, ValueError) as error:
        return f"is not JSON ({error})"
    if size > MAX_METADATA_BYTES:
        return f"{size} bytes of JSON; at most {MAX_METADATA_BYTES}"
    return _structure_problem(metadata)


def _structure_problem(metadata: dict[str, Any]) -> str | None:
    """Depth, keys and numbers: one walk, level by level, without recursion."""
    level: list[Any] = [metadata]  # the objects and arrays `depth` levels deep
    depth = 1
    while level:
        if depth > MAX_METADATA_DEPTH:
            return f"nested more than {MAX_METADATA_DEPTH} levels deep"
        below: list[Any] = []
        for container in level:
            if isinstance(container, dict):
                if not all(type(key) is str for key in container):
                    return "keys must be strings"
                container = container.values()
            for value in container:
                if isinstance(value, _CONTAINERS):
                    below.append(value)
                elif isinstance(value, float) and not math.isfinite(value):
                    spelled = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
                    return f"holds {spelled}; numbers must be finite (NaN and ±Infinity are not JSON)"
        level, depth = below, depth + 1
    return None


def check_metadata(metadata: Any, where: str = "metadata") -> dict[str, Any]:
    """`metadata` ({} for None), or `InvalidInput` naming `where` and the rule it breaks."""
    if metadata is None:
        return {}
    problem = metadata_problem(metadata)
    if problem is not None:
        raise InvalidInput(f"{where}: {problem}")
    return metadata
