"""Index writes and expression search: the service layer between the routes and the store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import numpy as np
import torch
from starlette.concurrency import run_in_threadpool

from app.engine import Engine
from app.errors import InvalidInput, NotFound
from app.images import media_type
from app.index import IndexStore, NewItem, check_id
from app.index.metadata import check_metadata
from app.schemas.index import (
    AddItemsResponse,
    DeleteResponse,
    IndexInfo,
    IndexItem,
    IndexItemInput,
    SearchHit,
    SearchResponse,
    SearchTerm,
)
from app.services.embedding import nothing
from models import geometry

# --- index ---------------------------------------------------------------------------------


async def add_items(embedder: Engine, store: IndexStore, items: Sequence[IndexItemInput]) -> AddItemsResponse:
    # 1. Check inputs (ids, duplicates, metadata) before any image is decoded
    ids = [item.id if item.id is not None else uuid.uuid4().hex for item in items]
    seen: set[str] = set()
    for i, (item_id, item) in enumerate(zip(ids, items, strict=True)):
        check_id(item_id, f"items[{i}].id")
        check_metadata(item.metadata, f"items[{i}].metadata")
        if item_id in seen:
            raise InvalidInput(f"items[{i}].id: {item_id!r} appears twice in the request")
        seen.add(item_id)

    # 2. Read the image bytes (kept as the items' sources) and embed them
    wheres = [f"items[{i}].image" for i in range(len(items))]
    data = await embedder.read_image_bytes(list(zip(wheres, [item.image for item in items], strict=True)))
    vectors = await embedder.encode_images(list(zip(wheres, data, strict=True)))  # (N, D)

    # 3. Log durably, then apply (blocking fsync: off the event loop)
    new = [NewItem(ids[i], vectors[i].numpy(), item.metadata, data[i]) for i, item in enumerate(items)]
    result = await run_in_threadpool(store.put, new)
    return AddItemsResponse(added=result.added, replaced=result.replaced, size=len(store))


async def delete_item(store: IndexStore, item_id: str) -> DeleteResponse:
    await run_in_threadpool(store.delete, item_id)
    return DeleteResponse(deleted=item_id, size=len(store))


def get_item(store: IndexStore, item_id: str) -> IndexItem:
    check_id(item_id)
    item = store.get(item_id)
    return IndexItem(
        id=item.id,
        metadata=item.metadata,
        has_source=item.source is not None,
        metadata_problem=item.metadata_problem,
    )


async def item_image(store: IndexStore, item_id: str) -> tuple[bytes, str]:
    """The image file an item was embedded from, as it was sent, and its media type."""
    check_id(item_id)
    item = store.get(item_id)
    if item.source is None:
        raise NotFound(f"indexed item {item_id!r} has no stored source image")
    try:
        data = await run_in_threadpool(store.source_bytes, item.source)
    except OSError:  # a CLI build's source file, moved or deleted since
        raise NotFound(f"the source image of indexed item {item_id!r} can no longer be read") from None
    return data, media_type(data)


def describe(store: IndexStore) -> IndexInfo:
    return IndexInfo.model_validate(store.describe())


# --- search --------------------------------------------------------------------------------


async def term_vectors(embedder: Engine, store: IndexStore | None, terms: Sequence[SearchTerm]) -> torch.Tensor:
    """Embed each term: texts and difference texts by the text tower, images by the image tower,
    ids from the index.  -> (T, D) in term order"""
    texts = [
        (i, f"terms[{i}].{t.kind}", t.text if t.text is not None else t.difference)
        for i, t in enumerate(terms)
        if t.kind in ("text", "difference")
    ]
    images = [(i, f"terms[{i}].image", t.image) for i, t in enumerate(terms) if t.image is not None]
    ids = [(i, f"terms[{i}].id", t.id) for i, t in enumerate(terms) if t.id is not None]
    for _, where, item_id in ids:
        check_id(item_id, where)
    if ids and store is None:
        raise InvalidInput("id terms need an index")

    text_vectors, image_vectors, id_vectors = await asyncio.gather(
        embedder.encode_texts([(where, text) for _, where, text in texts]) if texts else nothing(),
        embedder.encode_images([(where, image) for _, where, image in images]) if images else nothing(),
        run_in_threadpool(store.vectors, [item_id for _, _, item_id in ids]) if ids else nothing(),
    )
    out: list[torch.Tensor | None] = [None] * len(terms)
    for rows, vectors in ((texts, text_vectors), (images, image_vectors), (ids, id_vectors)):
        for (i, _, _), vector in zip(rows, vectors, strict=True):
            out[i] = torch.as_tensor(vector, dtype=torch.float32)
    return torch.stack(out)  # type: ignore[arg-type]


def combine(vectors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The query of an expression: normalize(Σ wᵢ · v̂ᵢ).  (T, D), (T,) -> (D,)"""
    try:
        return geometry.weighted_sum(vectors, weights)
    except ValueError as exc:
        raise InvalidInput(f"terms: {exc}") from None


def contributions(vectors: torch.Tensor, weights: torch.Tensor, hits: torch.Tensor) -> torch.Tensor:
    """wᵢ · cos(term i, hit j).  (T, D), (T,), (H, D) -> (H, T)"""
    return geometry.similarity(hits, vectors) * weights[None, :]


async def search(
    embedder: Engine,
    store: IndexStore,
    *,
    terms: Sequence[SearchTerm],
    k: int,
    filter: dict | None = None,
    include_query_items: bool = False,
) -> SearchResponse:
    """See `app.schemas.index.SEARCH_DESCRIPTION` for the combination rule."""
    # 1. Check inputs (the number of terms and `k` are bounded by the schema)
    if filter is not None:
        check_metadata(filter, "filter")

    # 2. Embed the terms and combine them into one query
    vectors = await term_vectors(embedder, store, terms)  # (T, D)
    weights = torch.tensor([t.weight for t in terms], dtype=torch.float32)  # (T,)
    query = combine(vectors, weights)  # (D,)

    # 3. Search (FAISS, off the event loop)
    exclude = [] if include_query_items else [t.id for t in terms if t.id is not None]
    hits = await run_in_threadpool(store.search, query.numpy(), k, filter=filter, exclude=exclude)

    # 4. Explain each hit by its terms
    if not hits:
        return SearchResponse(hits=[], index_type=store.describe()["index_type"])
    hit_vectors = torch.from_numpy(np.stack([h.vector for h in hits]))  # (H, D)
    parts = contributions(vectors, weights, hit_vectors).tolist()  # (H, T)
    return SearchResponse(
        hits=[
            SearchHit(
                id=h.id,
                score=h.score,
                metadata=h.metadata,
                metadata_problem=h.metadata_problem,
                contributions=parts[j],
            )
            for j, h in enumerate(hits)
        ],
        index_type=store.describe()["index_type"],
    )
