"""POST /classify (zero-shot + comparative prompting) and /classify/difference."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, File, Form, UploadFile
from pydantic import TypeAdapter, ValidationError

from app.deps import EngineDep
from app.errors import InvalidInput
from app.json_body import StrictJSONRoute
from app.schemas import ClassifyRequest, ClassifyResponse, Comparative, DifferenceRequest, DifferenceResponse
from app.schemas.classify import CLASSIFY_EXAMPLES, DEFAULT_TEMPLATE, DIFFERENCE_EXAMPLES, Comparatives, Template
from app.schemas.common import ERROR_RESPONSES, Text
from app.schemas.limits import MAX_ITEMS
from app.security import AccessDep
from app.services import classification

router = APIRouter(tags=["classify"], dependencies=[AccessDep], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)

_comparatives = TypeAdapter(Comparatives)


@router.post("/classify", response_model=ClassifyResponse, summary="Zero-shot classification of images")
async def classify(
    body: Annotated[ClassifyRequest, Body(openapi_examples=CLASSIFY_EXAMPLES)], engine: EngineDep
) -> ClassifyResponse:
    return await classification.classify(
        engine,
        images=body.images,
        labels=body.labels,
        template=body.template,
        comparatives=body.comparatives,
        alpha=body.alpha,
        top_k=body.top_k,
    )


@router.post("/classify/upload", response_model=ClassifyResponse, summary="Zero-shot classification of uploaded files")
async def classify_upload(
    engine: EngineDep,
    images: Annotated[list[UploadFile], MAX_ITEMS, File(description="Image files.")],
    labels: Annotated[list[Text], MAX_ITEMS, Form(description="Candidate labels.")],
    template: Annotated[Template, Form(description='Prompt; "{}" is replaced by the label.')] = DEFAULT_TEMPLATE,
    comparatives: Annotated[str | None, Form(description='JSON list of {"first", "second", "text"} objects.')] = None,
    alpha: Annotated[float, Form(ge=0.0, le=1.0)] = 0.8,
    top_k: Annotated[int | None, Form(ge=1)] = None,
) -> ClassifyResponse:
    return await classification.classify(
        engine,
        images=[await f.read() for f in images],
        labels=labels,
        template=template,
        comparatives=_parse_comparatives(comparatives),
        alpha=alpha,
        top_k=top_k,
    )


def _parse_comparatives(raw: str | None) -> list[Comparative]:
    if not raw:
        return []
    try:
        return _comparatives.validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"comparatives: {problems}") from None


@router.post(
    "/classify/difference",
    response_model=DifferenceResponse,
    summary="Score how image pairs differ against candidate difference texts",
)
async def classify_difference(
    body: Annotated[DifferenceRequest, Body(openapi_examples=DIFFERENCE_EXAMPLES)], engine: EngineDep
) -> DifferenceResponse:
    return await classification.classify_difference(
        engine, pairs=[(pair.first, pair.second) for pair in body.pairs], texts=body.texts
    )
