"""clip-retrieval's back protocol: POST /knn-service, POST /metadata, GET /indices-list, so its
`ClipClient` and web front end search this server's index."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from app.deps import EngineDep, IndexDep, SettingsDep
from app.json_body import StrictJSONRoute
from app.schemas.clip_back import (
    INDICE_NAME,
    KNN_EXAMPLES,
    METADATA_EXAMPLES,
    KnnRequest,
    KnnResult,
    MetadataEntry,
    MetadataRequest,
)
from app.schemas.common import ERROR_RESPONSES, ErrorResponse, Responses
from app.security import AccessDep
from app.services import clip_back as service

# strict_content_type=False: a body without a Content-Type is read as JSON, as clip back reads it
# (ClipClient sends none).
router = APIRouter(
    tags=["clip-retrieval"],
    dependencies=[AccessDep],
    responses=ERROR_RESPONSES,
    strict_content_type=False,
    route_class=StrictJSONRoute,
)
UNKNOWN_INDEX: Responses = {404: {"model": ErrorResponse, "description": f"`indice_name` is not `{INDICE_NAME}`."}}


@router.post(
    "/knn-service",
    response_model=list[KnnResult],
    summary="Nearest indexed images (clip-retrieval's knn service)",
    description="clip back's request and answer. Exactly one of `text`, `image` (base64), `image_url`, "
    "`embedding_input`; `num_images` results (clamped to PCCLIP_MAX_SEARCH_K). `deduplicate`, "
    "`use_safety_model`, `use_violence_detector`, `use_mclip`, `aesthetic_score` and `aesthetic_weight` are "
    "accepted and ignored; the index holds image embeddings only, so `modality` must be `image`.",
    responses=UNKNOWN_INDEX,
)
async def knn_service(
    body: Annotated[KnnRequest, Body(openapi_examples=KNN_EXAMPLES)],
    engine: EngineDep,
    store: IndexDep,
    settings: SettingsDep,
) -> list[KnnResult]:
    return await service.knn(engine, store, settings, body)


@router.post(
    "/metadata",
    response_model=list[MetadataEntry],
    summary="Metadata of indexed items (clip-retrieval's metadata service)",
    description="`[{id, metadata}]` in the order of `ids`; ids no longer indexed are left out.",
    responses=UNKNOWN_INDEX,
)
async def metadata(
    body: Annotated[MetadataRequest, Body(openapi_examples=METADATA_EXAMPLES)], store: IndexDep
) -> list[MetadataEntry]:
    return await service.metadata(store, body)


@router.get("/indices-list", response_model=list[str], summary="The indexes (clip-retrieval's indices list)")
async def indices_list(store: IndexDep) -> list[str]:  # `store`: listed only once the index is open
    return [INDICE_NAME]
