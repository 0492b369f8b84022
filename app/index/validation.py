"""The checks of what a write or a query brings to the index: ids, metadata, vectors.

One check per live write: the service calls `check_batch` on the request's ids and metadata
before any image is decoded and completes the batch with `CheckedBatch.items` once the images
are embedded; a backend's `put` passes its items through `checked`, which takes such items as
they are and checks any others (a CLI build, a test). Records replayed from a log are checked
when applied (they may predate the rules; see `app.index.rows`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import InvalidInput
from app.index.backend import NewItem
from app.index.metadata import check_metadata

MAX_ID_CHARS = 256
# Ids are plain names: letters, digits and . _ - : @ + = (no '/', '\', '..', leading '.').
ID_PATTERN = re.compile(r"[A-Za-z0-9_](?:\.?[A-Za-z0-9_:@+=-])*\.?")  # no "..", no leading "."


def check_id(item_id: str, where: str = "id") -> str:
    if not isinstance(item_id, str) or not item_id:
        raise InvalidInput(f"{where}: empty id")
    if len(item_id) > MAX_ID_CHARS:
        raise InvalidInput(f"{where}: id of {len(item_id)} characters; at most {MAX_ID_CHARS}")
    if ".." in item_id or not ID_PATTERN.fullmatch(item_id):
        raise InvalidInput(
            f"{where}: invalid id {item_id[:64]!r}: use letters, digits and . _ - : @ + = "
            "(no '/', '\\', '..', spaces, or a leading '.')"
        )
    return item_id


class CheckedItems(tuple[NewItem, ...]):
    """New items whose ids and metadata passed `check_batch` (made by `CheckedBatch.items`)."""

    __slots__ = ()


@dataclass(frozen=True)
class CheckedBatch:
    """The ids and metadata of one write, checked; `items` adds the vectors and sources."""

    ids: tuple[str, ...]
    metadata: tuple[dict[str, Any], ...]

    def items(self, vectors: Sequence[np.ndarray], sources: Sequence[bytes | Path | None]) -> CheckedItems:
        if not len(vectors) == len(sources) == len(self.ids):
            raise ValueError(f"{len(vectors)} vectors and {len(sources)} sources for {len(self.ids)} items")
        return CheckedItems(map(NewItem, self.ids, vectors, self.metadata, sources))


def check_batch(ids: Sequence[str], metadata: Sequence[Any], where: str = "items") -> CheckedBatch:
    """Each id valid, each metadata keeping the rules (None = {}), no id twice; `InvalidInput`
    naming `where[i]` otherwise."""
    seen: set[str] = set()
    for i, item_id in enumerate(ids):
        check_id(item_id, f"{where}[{i}].id")
        if item_id in seen:
            raise InvalidInput(f"{where}[{i}].id: {item_id!r} appears twice in the request")
        seen.add(item_id)
    checked_metadata = tuple(check_metadata(value, f"{where}[{i}].metadata") for i, value in enumerate(metadata))
    return CheckedBatch(tuple(ids), checked_metadata)


def checked(items: Sequence[NewItem]) -> CheckedItems:
    """`items` as checked items: as they are when they already passed `check_batch`, else checked now."""
    if isinstance(items, CheckedItems):
        return items
    batch = check_batch([item.id for item in items], [item.metadata for item in items])
    return batch.items([item.vector for item in items], [item.source for item in items])


def unit_vector(vector: Any, dim: int, where: str) -> np.ndarray:
    """`vector` as a unit float32 vector of size `dim`, or `InvalidInput` saying what is wrong.  -> (dim,)"""
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.shape[0] != dim:
        raise InvalidInput(f"{where}: embedding of size {v.shape[0]}; the index holds {dim}")
    scale = float(np.max(np.abs(v), initial=0.0))  # scaled first: the norm of large finite entries stays finite
    if not math.isfinite(scale) or scale < 1e-30:
        raise InvalidInput(f"{where}: embedding is zero or not finite")
    v = v / scale
    return (v / np.linalg.norm(v)).astype(np.float32)
