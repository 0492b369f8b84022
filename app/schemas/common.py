"""Shared schema pieces: the strict request base and the image input."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from app.schemas.examples import RED
from app.schemas.limits import MAX_CHARS


def not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("empty text")
    return text


# A text with a non-space character, of at most PCCLIP_MAX_TEXT_CHARS characters.
Text = Annotated[str, Field(json_schema_extra={"minLength": 1, "pattern": r"\S"}), AfterValidator(not_blank), MAX_CHARS]


def exactly_one_of(*names: str) -> JsonDict:
    """JSON Schema of "exactly one of these fields is given (not null)", for `json_schema_extra`,
    so the OpenAPI document says what the model validator enforces."""
    return {"oneOf": [{"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in names]}


class RequestModel(BaseModel):
    """Base of every request body: unknown fields, NaN/±inf numbers and values of another JSON
    type (`false` for a number, `0` for a boolean, `1.5` for an integer) are refused (422)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)


class ImageInput(RequestModel):
    """One image: base64 bytes of a PNG/JPEG/GIF/WebP/BMP/TIFF file, or (where the operator
    enabled it) a public http(s) URL."""

    model_config = ConfigDict(json_schema_extra={"examples": [RED], **exactly_one_of("b64", "url")})

    b64: str | None = Field(
        None,
        description="Base64 of the image file; a `data:image/...;base64,` prefix is accepted.",
    )
    url: str | None = Field(
        None,
        description="Public http(s) URL of the image; only when the server allows URL fetching.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ImageInput:
        if (self.b64 is None) == (self.url is None):
            raise ValueError('give exactly one of "b64" or "url"')
        return self


class FieldError(BaseModel):
    loc: list[str | int] = Field(description='Where: e.g. `["body", "images", 0, "b64"]`.')
    msg: str = Field(description="What is wrong there.")
    type: str = Field(description="The kind of failure, e.g. `missing`, `string_type`.")


class ErrorResponse(BaseModel):
    """The body of every error of the native API (the `/v1` API answers OpenAI's shape)."""

    detail: str = Field(description="What was wrong, in one message.")
    errors: list[FieldError] | None = Field(
        None, description="On validation failures (422): one entry per offending field."
    )


# A route's `responses=` for the OpenAPI document (FastAPI's type): status code -> response object.
Responses = dict[int | str, dict[str, Any]]

# Error answers every model endpoint may give, for the OpenAPI document.
ERROR_RESPONSES: Responses = {
    400: {"model": ErrorResponse, "description": "The body could not be parsed (not UTF-8 JSON, or bad multipart)."},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key (when one is configured)."},
    413: {"model": ErrorResponse, "description": "Request body over PCCLIP_MAX_BODY_BYTES."},
    422: {"model": ErrorResponse, "description": "Invalid input; `detail` says what and where (`errors`: per field)."},
    429: {"model": ErrorResponse, "description": "Rate limit or queue full; see the Retry-After header."},
    503: {"model": ErrorResponse, "description": "The model is not loaded (yet); `detail` says why."},
}
