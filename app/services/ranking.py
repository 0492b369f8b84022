"""Ranking images along the direction of a difference text."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import torch

from app.images import Source
from app.schemas import RankedImage, RankResponse
from app.services.embedding import Embedder, named, rows
from models import geometry


async def rank(embedder: Embedder, *, images: Sequence[Source], text: str) -> RankResponse:
    # 1. Check inputs
    embedder.check_count("images", images, at_least=1)
    embedder.check_texts([("text", text)])

    # 2. Encode the direction f(text) and the images
    text_vectors, image_vectors = await asyncio.gather(
        embedder.texts([("text", text)]), embedder.images(named("images", images))
    )  # (1, D), (N, D)

    # 3. Project onto the direction; "first"-like images (high scores) come first
    scores = geometry.project(image_vectors, text_vectors[0])  # (N,)
    order = torch.argsort(scores, descending=True, stable=True)
    values = rows(scores[None])[0]
    return RankResponse(results=[RankedImage(index=i, score=values[i]) for i in order.tolist()])
