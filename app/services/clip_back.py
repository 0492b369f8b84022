"""clip-retrieval's back protocol over the index: the query is embedded by the same towers as
/search's terms, and the hits come back in clip back's shape."""

from __future__ import annotations

import torch
from starlette.concurrency import run_in_threadpool

from app.engine import Engine
from app.errors import InvalidInput, NotFound
from app.index import IndexBackend, check_id
from app.schemas.clip_back import INDICE_NAME, KnnRequest, KnnResult, MetadataEntry, MetadataRequest
from app.schemas.common import ImageInput
from app.settings import Settings

QUERY_FIELDS = ("text", "image", "image_url", "embedding_input")


def check_indice(name: str | None) -> None:
    if name is not None and name != INDICE_NAME:
        raise NotFound(f"indice_name: no index named {name!r}; this server has {INDICE_NAME!r} (GET /indices-list)")


async def query_vector(embedder: Engine, store: IndexBackend, body: KnnRequest) -> torch.Tensor:
    """The query of exactly one of text, image, image_url, embedding_input (empty = absent, as in
    clip back).  -> (D,)"""
    given = [name for name in QUERY_FIELDS if getattr(body, name) not in (None, "", [])]
    if len(given) != 1:
        raise InvalidInput(
            f'give exactly one of "text", "image", "image_url", "embedding_input" (got {given or "none"})'
        )
    if body.text:
        return (await embedder.encode_texts([("text", body.text)]))[0]
    if body.image or body.image_url:
        source = ImageInput(b64=body.image) if body.image else ImageInput(url=body.image_url)
        return (await embedder.encode_images([(given[0], source)]))[0]
    vector = torch.tensor(body.embedding_input, dtype=torch.float32)
    if vector.shape[0] != store.embed_dim:
        raise InvalidInput(
            f"embedding_input: {vector.shape[0]} numbers; the index holds embeddings of {store.embed_dim}"
        )
    return vector  # normalized by the store


async def knn(embedder: Engine, store: IndexBackend, settings: Settings, body: KnnRequest) -> list[KnnResult]:
    # 1. Check inputs
    check_indice(body.indice_name)
    if body.modality == "text":
        raise InvalidInput('modality: "text" searches caption embeddings, which this index does not hold; use "image"')

    # 2. Embed the query and search (k clamped to the server's limit)
    query = await query_vector(embedder, store, body)
    k = min(body.num_result_ids or body.num_images, settings.max_search_k)
    hits = await run_in_threadpool(store.search, query.numpy(), k)

    # 3. clip back's shape: metadata keys, then id and similarity; metadata on the first num_images
    return [
        KnnResult.model_validate(
            {**(hit.metadata if rank < body.num_images else {}), "id": hit.id, "similarity": hit.score}
        )
        for rank, hit in enumerate(hits)
    ]


async def metadata(store: IndexBackend, body: MetadataRequest) -> list[MetadataEntry]:
    """The metadata of the given ids, in order; ids no longer indexed are left out (`ids` is
    bounded by the schema; the lookups run in the threadpool: on Milvus each is a query)."""
    check_indice(body.indice_name)
    for i, item_id in enumerate(body.ids):
        check_id(item_id, f"ids[{i}]")
    entries = await run_in_threadpool(lambda: [_entry(store, item_id) for item_id in body.ids])
    return [entry for entry in entries if entry is not None]


def _entry(store: IndexBackend, item_id: str) -> MetadataEntry | None:
    try:  # one lookup: a delete between a membership test and a get would make the whole answer a 404
        return MetadataEntry(id=item_id, metadata=store.get(item_id).metadata)
    except NotFound:
        return None
