"""The OpenAI-compatible embeddings (/v1): inputs checked entry by entry, embedded by the same
towers, batcher and cache as /embed (so the vectors are /embed's), encoded as OpenAI does."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from app.engine import Engine
from app.errors import InvalidInput, NotFound
from app.schemas.common import ImageInput, Text
from app.schemas.v1 import EmbeddingObject, EmbeddingsRequest, EmbeddingsResponse, Usage
from app.services.embedding import finite, nothing

URL_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class Part:
    """One entry of `input`: where it is (for messages), what it is, its string."""

    where: str
    kind: str  # "text" or "image"
    value: str


def parts(body: EmbeddingsRequest) -> list[Part]:
    """The entries of `input`, each a text or an image; anything else is refused by name."""
    if isinstance(body.input, str):
        return [Part("input", body.modality, body.input)]
    if not body.input:
        raise InvalidInput("input: give at least one entry", param="input")
    return [_part(f"input[{i}]", item, body.modality) for i, item in enumerate(body.input)]


def _part(where: str, item: Any, modality: str) -> Part:
    if isinstance(item, str):
        return Part(where, modality, item)
    if isinstance(item, dict) and len(item) == 1:
        ((kind, value),) = item.items()
        if kind in ("text", "image") and isinstance(value, str):
            return Part(f"{where}.{kind}", kind, value)
    if isinstance(item, int | list):
        raise InvalidInput(f"{where}: token arrays are not supported; send the text as a string", param="input")
    raise InvalidInput(f'{where}: expected a string, {{"text": "..."}} or {{"image": "..."}}', param="input")


_TEXT = TypeAdapter(Text)


def check_texts(texts: Sequence[tuple[str, str]]) -> None:
    """Check each text entry as a `Text` field is checked (not blank, the length limit); here,
    not in the schema, because whether a string of `input` is a text depends on `modality`."""
    for where, text in texts:
        try:
            _TEXT.validate_python(text)
        except ValidationError as exc:
            raise InvalidInput(f"{where}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def image_source(value: str) -> ImageInput:
    """An image string: an http(s) URL (fetched where allowed), else a data URI or bare base64."""
    return ImageInput(url=value) if value.startswith(URL_SCHEMES) else ImageInput(b64=value)


def check_model(embedder: Engine, body: EmbeddingsRequest, aliases: Sequence[str]) -> str:
    """The served model's id; `model` must name it (or be how the operator configured it)."""
    served = embedder.spec
    if body.model != served and body.model not in aliases:
        raise NotFound(
            f"model {body.model!r} is not served here; this server serves {served!r} (GET /v1/models)",
            param="model",
            code="model_not_found",
        )
    size = embedder.embed_dim
    if body.dimensions is not None and body.dimensions != size:
        raise InvalidInput(
            f"dimensions: {body.dimensions}; this model's embeddings have {size} dimensions, and no other size "
            "is served",
            param="dimensions",
        )
    return served


async def embeddings(embedder: Engine, body: EmbeddingsRequest, aliases: Sequence[str] = ()) -> EmbeddingsResponse:
    # 1. Check inputs: the model, the size, each entry (the schema bounded their number)
    served = check_model(embedder, body, aliases)
    entries = parts(body)
    texts = [(part.where, part.value) for part in entries if part.kind == "text"]
    images = [(part.where, image_source(part.value)) for part in entries if part.kind == "image"]
    check_texts(texts)

    # 2. Encode both kinds at once (separate batcher jobs), then put them back in input order
    text_vectors, image_vectors = await asyncio.gather(
        embedder.encode_texts(texts) if texts else nothing(),
        embedder.encode_images(images) if images else nothing(),
    )
    vectors = in_input_order(entries, {"text": text_vectors.numpy(), "image": image_vectors.numpy()})
    tokens = sum(len(text) for _, text in texts)
    return EmbeddingsResponse(
        data=[EmbeddingObject(index=i, embedding=e) for i, e in enumerate(encode(vectors, body.encoding_format))],
        model=served,
        usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
    )


def in_input_order(entries: Sequence[Part], vectors: dict[str, np.ndarray]) -> np.ndarray:
    """The rows of each kind's (n, D) vectors put back in the order of `entries`.  -> (N, D)

    numpy, not torch: this runs on the event loop (see app/batcher.py)."""
    taken = {kind: 0 for kind in vectors}
    order = []
    for part in entries:
        order.append(vectors[part.kind][taken[part.kind]])
        taken[part.kind] += 1
    return np.stack(order)


def encode(vectors: np.ndarray, encoding_format: str) -> list[list[float]] | list[str]:
    """(N, D) → lists of floats, or base64 of little-endian float32 bytes (OpenAI's `base64`)."""
    finite(vectors)
    if encoding_format == "float":
        return vectors.tolist()
    little_endian = vectors.astype("<f4")
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in little_endian]
