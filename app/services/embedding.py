"""The embedding service every other service builds on: inputs validated by the schemas (their
limits too, see `app.schemas.limits`) in, vectors out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

from app.engine import Engine
from app.errors import InvalidInput
from app.images import Source
from app.schemas import EmbedResponse

T = TypeVar("T")


def named(field: str, items: Sequence[T]) -> list[tuple[str, T]]:
    """[(field[i], item)] — the names error messages use."""
    return [(f"{field}[{i}]", item) for i, item in enumerate(items)]


def finite(values: np.ndarray) -> np.ndarray:
    """`values`, checked: a non-finite value is a model fault, never sent.

    numpy, not torch: this runs on the event loop, where a torch op's GIL round trip can cost
    milliseconds (see app/batcher.py)."""
    if not np.isfinite(values).all():
        raise RuntimeError("the model produced non-finite values")
    return values


def rows(x: torch.Tensor) -> list[list[float]]:
    """Tensor rows as JSON-ready lists (see `finite`)."""
    return finite(x.numpy()).tolist()


async def embed(embedder: Engine, *, texts: Sequence[str], images: Sequence[Source]) -> EmbedResponse:
    # 1. Check inputs (each field's limits are the schemas'; this rule spans two fields)
    if not texts and not images:
        raise InvalidInput('give at least one entry in "texts" or "images"')
    # 2. Encode both kinds at once (they queue as separate batcher jobs)
    text_vectors, image_vectors = await asyncio.gather(
        embedder.encode_texts(named("texts", texts)) if texts else nothing(),
        embedder.encode_images(named("images", images)) if images else nothing(),
    )
    return EmbedResponse(
        text_embeddings=rows(text_vectors),
        image_embeddings=rows(image_vectors),
        fingerprint=embedder.fingerprint,
    )


NO_VECTORS = torch.empty(0, 0)


async def nothing() -> torch.Tensor:
    """No vectors, as an awaitable: stands in for an encoding a request does not need.  -> (0, 0)"""
    return NO_VECTORS
