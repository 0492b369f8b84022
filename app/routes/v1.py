"""The OpenAI-compatible API: POST /v1/embeddings and GET /v1/models (errors in OpenAI's shape)."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import EngineDep, SettingsDep
from app.json_body import StrictJSONRoute
from app.schemas.v1 import V1_ERROR_RESPONSES, EmbeddingsRequest, EmbeddingsResponse, ModelList, ModelObject
from app.security import AccessDep
from app.services import v1 as service

router = APIRouter(
    prefix="/v1", tags=["openai"], dependencies=[AccessDep], responses=V1_ERROR_RESPONSES, route_class=StrictJSONRoute
)


@router.post(
    "/embeddings",
    response_model=EmbeddingsResponse,
    summary="Embed texts and images (OpenAI-compatible)",
    description="OpenAI's embeddings API: the vectors are those `/embed` gives. Images as infinity takes them "
    '(`"modality": "image"` with data URIs or URLs) or as Jina does (`{"image": ...}` entries, mixable with '
    '`{"text": ...}`). Errors in OpenAI\'s shape; invalid requests are 400.',
)  # its examples name the configured model: app.openapi adds them
async def embeddings(body: EmbeddingsRequest, engine: EngineDep, settings: SettingsDep) -> EmbeddingsResponse:
    return await service.embeddings(engine, body, aliases=[settings.model])


@router.get("/models", response_model=ModelList, summary="The served model (OpenAI-compatible)")
async def models(engine: EngineDep) -> ModelList:
    return ModelList(data=[ModelObject(id=engine.spec, created=int(engine.loaded_at))])
