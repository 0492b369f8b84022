"""Expression search: the service layer between /search and the index backend."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import torch
from starlette.concurrency import run_in_threadpool

from app.engine import Engine
from app.errors import InvalidInput
from app.index import Hit, IndexBackend, check_id
from app.index.filters import parse_filter
from app.index.validation import unit_vector
from app.schemas.index import SearchHit, SearchResponse, SearchTerm
from app.services.embedding import nothing
from models import geometry


async def term_vectors(embedder: Engine, store: IndexBackend | None, terms: Sequence[SearchTerm]) -> torch.Tensor:
    """Embed each term: texts and difference texts by the text tower, images by the image tower,
    ids from the index, vectors as given (checked against the index).  -> (T, D) in term order"""
    texts = [(i, f"terms[{i}].{t.kind}", text) for i, t in enumerate(terms) if (text := t.text or t.difference)]
    images = [(i, f"terms[{i}].image", t.image) for i, t in enumerate(terms) if t.image is not None]
    ids = [(i, f"terms[{i}].id", t.id) for i, t in enumerate(terms) if t.id is not None]
    raw = [(i, f"terms[{i}].vector", t.vector) for i, t in enumerate(terms) if t.vector is not None]
    for _, where, item_id in ids:
        check_id(item_id, where)
    if store is None and (ids or raw):
        raise InvalidInput("id and vector terms need an index")
    # An embedding the client has: the index's size, finite, not zero
    given = [(i, where, unit_vector(vector, store.embed_dim, where)) for i, where, vector in raw if store is not None]

    text_vectors, image_vectors, id_vectors = await asyncio.gather(
        embedder.encode_texts([(where, text) for _, where, text in texts]) if texts else nothing(),
        embedder.encode_images([(where, image) for _, where, image in images]) if images else nothing(),
        _indexed_vectors(store, [item_id for _, _, item_id in ids]) if ids and store is not None else nothing(),
    )
    out: list[torch.Tensor | None] = [None] * len(terms)
    positions = ([i for i, _, _ in texts], [i for i, _, _ in images], [i for i, _, _ in ids])
    for places, vectors in zip(positions, (text_vectors, image_vectors, id_vectors), strict=True):
        for i, vector in zip(places, vectors, strict=True):
            out[i] = torch.as_tensor(vector, dtype=torch.float32)
    for i, _, vector in given:
        out[i] = torch.as_tensor(vector, dtype=torch.float32)
    return torch.stack(out)  # type: ignore[arg-type]


async def _indexed_vectors(store: IndexBackend, ids: Sequence[str]) -> torch.Tensor:
    """The embeddings of indexed items, read off the event loop.  -> (N, D)"""
    return torch.from_numpy(await run_in_threadpool(store.vectors, ids))


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
    store: IndexBackend,
    *,
    terms: Sequence[SearchTerm],
    k: int,
    filter: dict | None = None,
    min_score: float | None = None,
    include_query_items: bool = False,
) -> SearchResponse:
    """See `app.schemas.index.SEARCH_DESCRIPTION` for the combination rule."""
    # 1. Check inputs (the number of terms and `k` are bounded by the schema; the filter's size by parse_filter)
    parsed = parse_filter(filter) if filter is not None else None

    # 2. Embed the terms and combine them into one query
    vectors = await term_vectors(embedder, store, terms)  # (T, D)
    weights = torch.tensor([t.weight for t in terms], dtype=torch.float32)  # (T,)
    query = combine(vectors, weights)  # (D,)

    # 3. Search (off the event loop)
    exclude = [] if include_query_items else [t.id for t in terms if t.id is not None]

    def search_and_kind() -> tuple[list[Hit], str]:
        hits = store.search(query.numpy(), k, filter=parsed, exclude=exclude, min_score=min_score)
        return hits, store.describe()["index_type"]

    hits, index_type = await run_in_threadpool(search_and_kind)

    # 4. Explain each hit by its terms
    if not hits:
        return SearchResponse(hits=[], index_type=index_type)
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
        index_type=index_type,
    )
