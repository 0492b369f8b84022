"""POST /rank: order images along the direction of a difference text."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from app.deps import EngineDep, IndexSlotDep
from app.json_body import StrictJSONRoute
from app.schemas import RankRequest, RankResponse
from app.schemas.common import ERROR_RESPONSES, ErrorResponse
from app.schemas.rank import RANK_EXAMPLES
from app.security import AccessDep
from app.services import ranking

router = APIRouter(tags=["rank"], dependencies=[AccessDep], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)


@router.post(
    "/rank",
    response_model=RankResponse,
    summary="Order images along a difference text",
    responses={404: {"model": ErrorResponse, "description": "An entry of `ids` names no indexed item."}},
)
async def rank(
    body: Annotated[RankRequest, Body(openapi_examples=RANK_EXAMPLES)], engine: EngineDep, index: IndexSlotDep
) -> RankResponse:
    return await ranking.rank(engine, images=body.images, text=body.text, ids=body.ids, index=index)
