"""Index writes and reads: the service layer between the index routes and the backend."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from app.engine import Engine
from app.errors import NotFound
from app.images import media_type
from app.index import IndexBackend, check_id
from app.index.validation import check_batch
from app.schemas.index import AddItemsResponse, DeleteResponse, IndexInfo, IndexItem, IndexItemInput


async def add_items(embedder: Engine, store: IndexBackend, items: Sequence[IndexItemInput]) -> AddItemsResponse:
    # 1. Check inputs (ids, duplicates, metadata) before any image is decoded: the write's one check
    ids = [item.id if item.id is not None else uuid.uuid4().hex for item in items]
    batch = check_batch(ids, [item.metadata for item in items])

    # 2. Read the image bytes (kept as the items' sources) and embed them
    wheres = [f"items[{i}].image" for i in range(len(items))]
    data = await embedder.read_image_bytes(list(zip(wheres, [item.image for item in items], strict=True)))
    vectors = await embedder.encode_images(list(zip(wheres, data, strict=True)))  # (N, D)

    # 3. Log durably, then apply (blocking fsync: off the event loop)
    new = batch.items([vector.numpy() for vector in vectors], data)
    result = await run_in_threadpool(store.put, new)
    size = await run_in_threadpool(len, store)  # on Milvus a count is a query to its server
    return AddItemsResponse(added=result.added, replaced=result.replaced, size=size)


async def delete_item(store: IndexBackend, item_id: str) -> DeleteResponse:
    await run_in_threadpool(store.delete, item_id)
    return DeleteResponse(deleted=item_id, size=await run_in_threadpool(len, store))


async def get_item(store: IndexBackend, item_id: str) -> IndexItem:
    check_id(item_id)
    item = await run_in_threadpool(store.get, item_id)
    return IndexItem(
        id=item.id,
        metadata=item.metadata,
        has_source=item.source is not None,
        metadata_problem=item.metadata_problem,
    )


async def item_image(store: IndexBackend, item_id: str) -> tuple[bytes, str]:
    """The image file an item was embedded from, as it was sent, and its media type."""
    check_id(item_id)
    item = await run_in_threadpool(store.get, item_id)
    if item.source is None:
        raise NotFound(f"indexed item {item_id!r} has no stored source image")
    try:
        data = await run_in_threadpool(store.source_bytes, item.source)
    except OSError:  # a CLI build's source file, moved or deleted since
        raise NotFound(f"the source image of indexed item {item_id!r} can no longer be read") from None
    return data, media_type(data)


async def describe(store: IndexBackend) -> IndexInfo:
    """What the backend reports (off the event loop: Milvus asks its server)."""
    return IndexInfo.model_validate(await run_in_threadpool(store.describe))
