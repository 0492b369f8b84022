"""POST /search: the indexed items nearest to an expression over embeddings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from app.deps import EngineDep, IndexDep
from app.json_body import StrictJSONRoute
from app.schemas.common import ERROR_RESPONSES, ErrorResponse
from app.schemas.index import SEARCH_DESCRIPTION, SEARCH_EXAMPLES, SearchRequest, SearchResponse
from app.security import AccessDep
from app.services import search as service

router = APIRouter(tags=["search"], dependencies=[AccessDep], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Search the index with weighted terms",
    description=SEARCH_DESCRIPTION,
    responses={404: {"model": ErrorResponse, "description": "An `id` term names no indexed item."}},
)
async def search(
    body: Annotated[SearchRequest, Body(openapi_examples=SEARCH_EXAMPLES)],
    engine: EngineDep,
    store: IndexDep,
) -> SearchResponse:
    return await service.search(
        engine,
        store,
        terms=body.terms,
        k=body.k,
        filter=body.filter,
        min_score=body.min_score,
        include_query_items=body.include_query_items,
    )
