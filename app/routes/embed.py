"""POST /embed: texts and/or images → normalized vectors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, File, Form, UploadFile

from app.deps import EngineDep
from app.json_body import StrictJSONRoute
from app.schemas import EmbedRequest, EmbedResponse
from app.schemas.common import ERROR_RESPONSES, Text
from app.schemas.embed import EMBED_EXAMPLES
from app.schemas.limits import MAX_ITEMS
from app.security import AccessDep
from app.services import embedding

router = APIRouter(tags=["embed"], dependencies=[AccessDep], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)


@router.post("/embed", response_model=EmbedResponse, summary="Embed texts and images")
async def embed(
    body: Annotated[EmbedRequest, Body(openapi_examples=EMBED_EXAMPLES)], engine: EngineDep
) -> EmbedResponse:
    return await embedding.embed(engine, texts=body.texts, images=body.images)


@router.post("/embed/upload", response_model=EmbedResponse, summary="Embed uploaded image files (multipart)")
async def embed_upload(
    engine: EngineDep,
    images: Annotated[Annotated[list[UploadFile], MAX_ITEMS] | None, File(description="Image files.")] = None,
    texts: Annotated[Annotated[list[Text], MAX_ITEMS] | None, Form(description="Texts to embed.")] = None,
) -> EmbedResponse:
    blobs = [await f.read() for f in images or []]
    return await embedding.embed(engine, texts=texts or [], images=blobs)
