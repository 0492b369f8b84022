"""The index: add (upsert), read and delete items; describe the index."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from app.deps import EngineDep, IndexDep
from app.images import MEDIA_TYPES
from app.json_body import StrictJSONRoute
from app.schemas.common import ERROR_RESPONSES, ErrorResponse, Responses
from app.schemas.index import (
    ADD_EXAMPLES,
    ID_DESCRIPTION,
    ID_SCHEMA,
    AddItemsRequest,
    AddItemsResponse,
    DeleteResponse,
    IndexInfo,
    IndexItem,
)
from app.security import AccessDep
from app.services import index as service

router = APIRouter(tags=["index"], dependencies=[AccessDep], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "No indexed item with that id."}}
DISK_FULL: Responses = {
    507: {"model": ErrorResponse, "description": "The disk is full: nothing of the write was stored."}
}
# OpenAPI links: the first item of an add, read and deleted by id.
ITEM_LINKS = {
    name: {"operationRef": f"#/paths/~1index~1items~1{{item_id}}/{method}", "parameters": {"item_id": where}}
    for name, method, where in (
        ("get_added", "get", "$response.body#/added/0"),
        ("delete_added", "delete", "$response.body#/added/0"),
        ("get_replaced", "get", "$response.body#/replaced/0"),
    )
}
ItemIdPath = Annotated[str, Path(description=ID_DESCRIPTION, json_schema_extra=ID_SCHEMA)]  # checked by the store


@router.get("/index", response_model=IndexInfo, summary="Size, model fingerprint and kind of the index")
async def describe(store: IndexDep) -> IndexInfo:
    return await service.describe(store)


@router.post(
    "/index/items",
    response_model=AddItemsResponse,
    summary="Add or replace items",
    description="Embeds each image and stores it with its id and metadata. The answer comes only once the "
    "write is on stable storage (write-ahead log, fsynced): an acknowledged item survives `kill -9`.",
    responses={200: {"description": "Stored.", "links": ITEM_LINKS}, **DISK_FULL},
)
async def add_items(
    body: Annotated[AddItemsRequest, Body(openapi_examples=ADD_EXAMPLES)], engine: EngineDep, store: IndexDep
) -> AddItemsResponse:
    return await service.add_items(engine, store, body.items)


@router.get("/index/items/{item_id}", response_model=IndexItem, summary="One indexed item", responses=NOT_FOUND)
async def get_item(item_id: ItemIdPath, store: IndexDep) -> IndexItem:
    return await service.get_item(store, item_id)


@router.get(
    "/index/items/{item_id}/image",
    response_class=Response,
    summary="The image an item was embedded from",
    responses={
        200: {
            "content": {name: {"schema": {"type": "string", "format": "binary"}} for name in MEDIA_TYPES},
            "description": "The image file as it was added (its media type from its signature).",
        },
        **NOT_FOUND,
    },
)
async def get_item_image(item_id: ItemIdPath, store: IndexDep) -> Response:
    data, media_type = await service.item_image(store, item_id)
    return Response(data, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})


@router.delete(
    "/index/items/{item_id}", response_model=DeleteResponse, summary="Delete an item", responses=NOT_FOUND | DISK_FULL
)
async def delete_item(item_id: ItemIdPath, store: IndexDep) -> DeleteResponse:
    return await service.delete_item(store, item_id)
