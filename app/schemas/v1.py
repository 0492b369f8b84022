"""Schemas of the OpenAI-compatible API (/v1): OpenAI's embeddings request and response, with
infinity's `modality` and Jina's `{"text"}` / `{"image"}` inputs for images."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from app.schemas.common import RequestModel, ResponseModel
from app.schemas.examples import RED_PNG_B64
from app.schemas.limits import MAX_ITEMS

IMAGE_DESCRIPTION = (
    "an image: a `data:image/...;base64,` URI (or bare base64), or an http(s) URL where the server "
    "allows URL fetching (PCCLIP_ALLOW_URL_FETCH)"
)
_STRING = {"type": "string", "minLength": 1}
INPUT_SCHEMA = {
    "description": "A string or a list of them (texts; images with `modality: image`), or a list mixing "
    '`{"text": ...}` and `{"image": ...}` objects. The i-th embedding of the answer is the i-th input\'s.',
    "anyOf": [
        _STRING,
        {
            "type": "array",
            "minItems": 1,
            "items": {
                "anyOf": [
                    _STRING,
                    {
                        "type": "object",
                        "properties": {"text": _STRING},
                        "required": ["text"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {"image": {**_STRING, "description": IMAGE_DESCRIPTION}},
                        "required": ["image"],
                        "additionalProperties": False,
                    },
                ]
            },
        },
    ],
}


class EmbeddingsRequest(RequestModel):
    model: str = Field(description="The served model's id, as `GET /v1/models` lists it.")
    # The list is bounded here; its entries are checked one by one by the service, for messages that
    # name the entry (`input[2]: ...`) and because a string is a text or an image by `modality`.
    input: Annotated[str | list[Any], WithJsonSchema(INPUT_SCHEMA), MAX_ITEMS]
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="`float`: lists of numbers; `base64`: little-endian float32 bytes, base64-encoded."
    )
    dimensions: int | None = Field(None, ge=1, description="Must be the model's embedding size when given.")
    user: str | None = Field(None, description="Accepted and ignored.")
    modality: Literal["text", "image"] = Field(
        "text", description=f"What the plain strings of `input` are: texts, or images ({IMAGE_DESCRIPTION})."
    )


def embeddings_examples(model: str) -> dict[str, dict]:
    """The request examples of /docs, for the server's model `model`."""
    image = f"data:image/png;base64,{RED_PNG_B64}"
    return {
        "texts": {"summary": "Texts", "value": {"model": model, "input": ["a red square", "a blue circle"]}},
        "images": {"summary": "An image (data URI)", "value": {"model": model, "input": [image], "modality": "image"}},
        "mixed": {
            "summary": "A text and an image in one call",
            "value": {"model": model, "input": [{"text": "a red square"}, {"image": image}]},
        },
    }


class EmbeddingObject(ResponseModel):
    object: Literal["embedding"] = "embedding"
    index: int = Field(description="The input's position in `input`.")
    embedding: list[float] | str = Field(description="L2-normalized; a base64 string with `encoding_format: base64`.")


class Usage(ResponseModel):
    prompt_tokens: int = Field(description="Characters of the text inputs (images count 0): no tokens are billed.")
    total_tokens: int


class EmbeddingsResponse(ResponseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingObject]
    model: str
    usage: Usage


class ModelObject(ResponseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="When this server loaded the model (Unix time).")
    owned_by: str = "pcclip"


class ModelList(ResponseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class OpenAIError(BaseModel):
    message: str = Field(description="What was wrong.")
    type: str = Field(description="`invalid_request_error`, `requests` (rate limit) or `server_error`.")
    param: str | None = Field(None, description="The request field at fault, when one is.")
    code: str | None = Field(None, description="E.g. `model_not_found`, `invalid_api_key`, `rate_limit_exceeded`.")


class OpenAIErrorResponse(BaseModel):
    """The body of every error of /v1, as OpenAI's API answers it."""

    error: OpenAIError


V1_ERROR_RESPONSES: dict[int | str, dict] = {
    400: {"model": OpenAIErrorResponse, "description": "Invalid request; `error.message` says what and where."},
    401: {"model": OpenAIErrorResponse, "description": "Missing or wrong API key (when one is configured)."},
    404: {"model": OpenAIErrorResponse, "description": "`model` is not the served model (`model_not_found`)."},
    413: {"model": OpenAIErrorResponse, "description": "Request body over PCCLIP_MAX_BODY_BYTES."},
    429: {"model": OpenAIErrorResponse, "description": "Rate limit or queue full; see the Retry-After header."},
    503: {"model": OpenAIErrorResponse, "description": "The model is not loaded (yet)."},
    # Declared so that FastAPI does not add its 422: /v1 answers invalid requests with 400.
    "4XX": {"model": OpenAIErrorResponse, "description": "Any other client error."},
}
