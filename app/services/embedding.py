"""The embedding service every other service builds on: inputs validated by the schemas (their
limits too, see `app.schemas.limits`) in, vectors out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import torch

from app.errors import InvalidInput
from app.images import ImageLoader, Source
from app.schemas import EmbedResponse
from app.state import LoadedModel


def named(field: str, items: Sequence) -> list[tuple[str, object]]:
    """[(field[i], item)] — the names error messages use."""
    return [(f"{field}[{i}]", item) for i, item in enumerate(items)]


class Embedder:
    """Decodes and preprocesses images off the event loop, and sends the tensors through the
    model's batcher (texts through its cache)."""

    def __init__(self, model: LoadedModel, images: ImageLoader) -> None:
        self.model = model
        self.image_loader = images

    @property
    def fingerprint(self) -> str:
        return self.model.fingerprint

    async def texts(self, named_texts: Sequence[tuple[str, str]]) -> torch.Tensor:
        """Embed texts.  -> (N, D)"""
        return await self.model.encode_texts([text for _, text in named_texts])

    async def images(self, sources: Sequence[tuple[str, Source]]) -> torch.Tensor:
        """Load, preprocess (threadpool) and embed images.  -> (N, D)

        Admitted by the batcher first: when the queue is full, or the decoded pixels in flight
        would exceed their budget, the request is refused before any image is decoded."""
        batcher = self.model.batcher
        with batcher.admit(len(sources)):
            pixels = await self.image_loader.load(sources, self.model.encoder.pixels, batcher.pixels)  # (N, 3, H, W)
        return await self.model.encode_pixels(pixels)


def rows(x: torch.Tensor) -> list[list[float]]:
    """Tensor rows as JSON-ready lists; a non-finite value is a model fault, never sent."""
    if not torch.isfinite(x).all():
        raise RuntimeError("the model produced non-finite values")
    return x.tolist()


async def embed(embedder: Embedder, *, texts: Sequence[str], images: Sequence[Source]) -> EmbedResponse:
    # 1. Check inputs (each field's limits are the schemas'; this rule spans two fields)
    if not texts and not images:
        raise InvalidInput('give at least one entry in "texts" or "images"')
    # 2. Encode both kinds at once (they queue as separate batcher jobs)
    empty = torch.empty(0, 0)
    text_vectors, image_vectors = await asyncio.gather(
        embedder.texts(named("texts", texts)) if texts else _const(empty),
        embedder.images(named("images", images)) if images else _const(empty),
    )
    return EmbedResponse(
        text_embeddings=rows(text_vectors),
        image_embeddings=rows(image_vectors),
        fingerprint=embedder.fingerprint,
    )


async def _const(value: torch.Tensor) -> torch.Tensor:
    return value
