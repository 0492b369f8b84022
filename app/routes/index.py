"""The index: add (upsert), read and delete items; describe the index."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from app.deps import EmbedderDep, IndexDep
from app.schemas.common import ERROR_RESPONSES
from app.schemas.index import (
    ADD_EXAMPLES,
    AddItemsRequest,
    AddItemsResponse,
    DeleteResponse,
    IndexInfo,
    IndexItem,
)
from app.security import AccessDep
from app.services import search as service

router = APIRouter(tags=["index"], dependencies=[AccessDep], responses=ERROR_RESPONSES)
NOT_FOUND = {404: {"description": "No indexed item with that id."}}


@router.get("/index", response_model=IndexInfo, summary="Size, model fingerprint and kind of the index")
async def describe(store: IndexDep) -> IndexInfo:
    return service.describe(store)


@router.post(
    "/index/items",
    response_model=AddItemsResponse,
    summary="Add or replace items",
    description="Embeds each image and stores it with its id and metadata. The answer comes only once the "
    "write is on stable storage (write-ahead log, fsynced): an acknowledged item survives `kill -9`.",
)
async def add_items(
    body: Annotated[AddItemsRequest, Body(openapi_examples=ADD_EXAMPLES)], embedder: EmbedderDep, store: IndexDep
) -> AddItemsResponse:
    return await service.add_items(embedder, store, body.items)


@router.get("/index/items/{item_id}", response_model=IndexItem, summary="One indexed item", responses=NOT_FOUND)
async def get_item(item_id: str, store: IndexDep) -> IndexItem:
    return service.get_item(store, item_id)


@router.delete("/index/items/{item_id}", response_model=DeleteResponse, summary="Delete an item", responses=NOT_FOUND)
async def delete_item(item_id: str, store: IndexDep) -> DeleteResponse:
    return await service.delete_item(store, item_id)
