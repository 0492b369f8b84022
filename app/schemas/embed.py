"""Schemas of /embed."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from app.schemas.common import ImageInput, RequestModel, ResponseModel, Text
from app.schemas.examples import BLUE, RED
from app.schemas.limits import MAX_ITEMS


class EmbedRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["texts"], "properties": {"texts": {"minItems": 1}}},
                {"required": ["images"], "properties": {"images": {"minItems": 1}}},
            ]
        }
    )

    texts: Annotated[list[Text], MAX_ITEMS] = Field(default_factory=list, description="Texts to embed.")
    images: Annotated[list[ImageInput], MAX_ITEMS] = Field(default_factory=list, description="Images to embed.")

    @model_validator(mode="after")
    def _not_empty(self) -> EmbedRequest:
        if not self.texts and not self.images:
            raise ValueError('give at least one entry in "texts" or "images"')
        return self


EMBED_EXAMPLES = {
    "texts and images": {
        "summary": "Two texts and two images",
        "value": {"texts": ["a red square", "a blue square"], "images": [RED, BLUE]},
    },
    "texts only": {"summary": "Texts only", "value": {"texts": ["a photo of a cat"]}},
}


class EmbedResponse(ResponseModel):
    text_embeddings: list[list[float]] = Field(description="One L2-normalized vector per text, in request order.")
    image_embeddings: list[list[float]] = Field(description="One L2-normalized vector per image, in request order.")
    fingerprint: str = Field(description="Fingerprint of the model that made the vectors.")
