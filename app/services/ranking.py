"""Ranking images along the direction of a difference text."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import torch
from starlette.concurrency import run_in_threadpool

from app.engine import Engine
from app.errors import InvalidInput
from app.images import Source
from app.index import check_id
from app.index.backend import IndexBackend
from app.schemas import RankedImage, RankResponse
from app.services.embedding import named, nothing, rows
from app.slot import Slot
from models import geometry


async def rank(
    embedder: Engine,
    *,
    images: Sequence[Source],
    text: str,
    ids: Sequence[str] = (),
    index: Slot[IndexBackend] | None = None,
) -> RankResponse:
    # 1. Check inputs (each field's limits are the schema's; this rule spans two fields)
    if not images and not ids:
        raise InvalidInput('give at least one entry in "images" or "ids"')
    for i, item_id in enumerate(ids):
        check_id(item_id, f"ids[{i}]")
    store = index.require() if ids and index is not None else None
    if ids and store is None:
        raise InvalidInput("ids: this server has no index")

    # 2. Encode the direction f(text) and the images; look up the indexed items
    text_vectors, image_vectors, item_vectors = await asyncio.gather(
        embedder.encode_texts([("text", text)]),
        embedder.encode_images(named("images", images)) if images else nothing(),
        run_in_threadpool(store.vectors, list(ids)) if store is not None else nothing(),
    )  # (1, D), (N, D), (M, D)
    dim = text_vectors.shape[1]
    vectors = torch.cat([image_vectors.reshape(-1, dim), torch.as_tensor(item_vectors).reshape(-1, dim)])  # (N + M, D)
    refs = [(i, None) for i in range(len(images))] + [(None, item_id) for item_id in ids]

    # 3. Project onto the direction; "first"-like images (high scores) come first
    scores = geometry.project(vectors, text_vectors[0])  # (N + M,)
    order = torch.argsort(scores, descending=True, stable=True)
    values = rows(scores[None])[0]
    return RankResponse(results=[RankedImage(index=refs[i][0], id=refs[i][1], score=values[i]) for i in order.tolist()])
