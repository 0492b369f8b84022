"""Schemas of /rank."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from app.schemas.common import ImageInput, RequestModel, ResponseModel, Text
from app.schemas.examples import BLUE, GREEN, RED
from app.schemas.index import ItemId
from app.schemas.limits import MAX_ITEMS


class RankRequest(RequestModel):
    images: Annotated[list[ImageInput], MAX_ITEMS] = Field(default_factory=list, description="Images to order.")
    ids: Annotated[list[ItemId], MAX_ITEMS] = Field(
        default_factory=list, description="Indexed items to order with them, by id (their stored embeddings)."
    )
    text: Text = Field(
        description='A difference text giving the direction, e.g. "the first is larger than '
        'the second": images the text describes as "first" come first.'
    )


RANK_EXAMPLES = {
    "redness": {
        "summary": "Order by redness",
        "value": {
            "images": [BLUE, RED, GREEN],
            "text": "the first image is more red than the second image",
        },
    }
}


class RankedImage(ResponseModel):
    index: int | None = Field(None, description="Position of the image in `images`; null for an indexed item.")
    id: str | None = Field(None, description="The indexed item's id; null for an image of the request.")
    score: float = Field(description="Projection of the image embedding on the text direction.")


class RankResponse(ResponseModel):
    results: list[RankedImage] = Field(description="Every image, highest score first.")
