"""Operational endpoints: liveness, readiness, model info, Prometheus metrics."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import EngineDep, GeneratorSlotDep, IndexSlotDep, ModelSlotDep, SettingsDep
from app.generation.generator import describe_generator
from app.json_body import StrictJSONRoute
from app.schemas import HealthResponse, InfoResponse, ReadyResponse
from app.schemas.common import ERROR_RESPONSES
from app.schemas.generate import GenerationInfo
from app.schemas.system import Capabilities, ComponentState, Limits
from app.security import AccessDep

router = APIRouter(tags=["system"], route_class=StrictJSONRoute)


@router.get("/health", response_model=HealthResponse, summary="The process is alive")
async def health() -> HealthResponse:
    return HealthResponse()


Component = Literal["index", "generator"]
READY_DESCRIPTION = """\
200 once the model is loaded: the model endpoints serve. The index and the generator are
reported beside it (`state` and, when not ready, `detail` with the reason and what to do) and do
not make the server unready: an index of another model, or one held by another process, leaves
the model API serving and only `/index…`, `/search` and `/rank` with ids answering 503.
`?require=index` (and/or `require=generator`) makes those count too, e.g. as the health check of
the replica that owns the index.
"""


@router.get(
    "/ready",
    response_model=ReadyResponse,
    summary="The model is loaded (and the components asked for in `require`)",
    description=READY_DESCRIPTION,
    responses={
        422: ERROR_RESPONSES[422],  # an unknown `require` value
        503: {"model": ReadyResponse, "description": "Not ready; `detail` says why."},
    },
)
async def ready(
    model: ModelSlotDep,
    index: IndexSlotDep,
    generator: GeneratorSlotDep,
    require: Annotated[
        list[Component] | None, Query(description="Components that must be ready too (repeatable).")
    ] = None,
) -> JSONResponse:
    components = {
        "model": ComponentState(state=model.state, detail=model.detail),
        "index": ComponentState(state=index.state, detail=index.detail),
        "generator": ComponentState(state=generator.state, detail=generator.detail),
    }
    waiting = [
        components[name] for name in ("model", *dict.fromkeys(require or ())) if components[name].state != "ready"
    ]
    body = ReadyResponse(ready=not waiting, **components, detail=waiting[0].detail if waiting else None)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


@router.get(
    "/info",
    response_model=InfoResponse,
    summary="The served model and what the server can do",
    dependencies=[AccessDep],  # names the model (a checkpoint's path) and the limits: clients only
    responses={status: ERROR_RESPONSES[status] for status in (401, 429, 503)},
)
async def info(
    engine: EngineDep, settings: SettingsDep, index: IndexSlotDep, generator: GeneratorSlotDep
) -> InfoResponse:
    described = engine.describe()
    return InfoResponse(
        spec=described["spec"],
        fingerprint=described["fingerprint"],
        embed_dim=described["embed_dim"],
        device=described["device"],
        dtype=described["dtype"],
        notes=described.get("notes", []),
        capabilities=Capabilities(
            url_inputs=settings.allow_url_fetch,
            auth=settings.api_key is not None,
            index=index.state == "ready",
            generation=generator.state == "ready",
        ),
        generation=GenerationInfo(**describe_generator(generator, settings)),
        limits=Limits(
            max_items=settings.max_items,
            max_text_chars=settings.max_text_chars,
            max_body_bytes=settings.max_body_bytes,
            max_image_pixels=settings.max_image_pixels,
            max_image_side=settings.max_image_side,
            max_batch=settings.max_batch,
        ),
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
