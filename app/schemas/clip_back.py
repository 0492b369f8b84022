"""Schemas of clip-retrieval's back protocol (`/knn-service`, `/metadata`, `/indices-list`), as
its `clip_back.py` reads and answers them; the fields it has and pcclip cannot honour are
accepted and ignored, as are fields neither knows (clip back ignores them too)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.schemas.common import ResponseModel, not_blank
from app.schemas.examples import RED_PNG_B64
from app.schemas.limits import MAX_CHARS, MAX_ITEMS

INDICE_NAME = "pcclip"  # the one index this server has, as /indices-list names it
IGNORED = "Accepted and ignored (pcclip has no such filter or model)."


def _spaces_refused(text: str) -> str:
    """ "" is no query, as in clip back (so the document allows it); a text of spaces only is refused."""
    return not_blank(text) if text else text


QueryText = Annotated[str, AfterValidator(_spaces_refused), MAX_CHARS]


class ClipBackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, strict=True)


class KnnRequest(ClipBackRequest):
    text: QueryText | None = Field(None, description="Find images matching this text (the text tower).")
    image: str | None = Field(None, description="Find images like this one: base64 of the image file.")
    image_url: str | None = Field(
        None, description="Find images like the one at this http(s) URL (only where PCCLIP_ALLOW_URL_FETCH allows)."
    )
    embedding_input: list[float] | None = Field(None, description="Find images near this embedding.")
    modality: Literal["image", "text"] = Field(
        "image", description='What to search: `image` embeddings (the only kind this index holds; "text" is a 422).'
    )
    num_images: int = Field(40, ge=1, description="Results to return (at most PCCLIP_MAX_SEARCH_K).")
    num_result_ids: int | None = Field(
        None, ge=1, description="Results to find (default `num_images`); only the first `num_images` carry metadata."
    )
    indice_name: str | None = Field(None, description=f"The index: `{INDICE_NAME}` (see /indices-list).")
    deduplicate: Any = Field(None, description=IGNORED)
    use_safety_model: Any = Field(None, description=IGNORED)
    use_violence_detector: Any = Field(None, description=IGNORED)
    use_mclip: Any = Field(None, description=IGNORED)
    aesthetic_score: Any = Field(None, description=IGNORED)
    aesthetic_weight: Any = Field(None, description=IGNORED)


KNN_EXAMPLES = {
    "text": {
        "summary": "By text",
        "value": {"text": "a red square", "modality": "image", "num_images": 10, "indice_name": INDICE_NAME},
    },
    "image": {
        "summary": "By image (base64)",
        "value": {"image": RED_PNG_B64, "modality": "image", "num_images": 10, "indice_name": INDICE_NAME},
    },
}


class KnnResult(ResponseModel):
    """One result: the item's metadata keys at the top level (so `url` and `caption` come back
    as clip back's do), then `id` and `similarity`."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="The item's id in the index (clip back: the row number; pcclip: the item id).")
    similarity: float = Field(description="Cosine similarity of the item with the query.")


class MetadataRequest(ClipBackRequest):
    ids: Annotated[list[str], MAX_ITEMS] = Field(description="Ids from `/knn-service` results.")
    indice_name: str | None = Field(None, description=f"The index: `{INDICE_NAME}`.")


METADATA_EXAMPLES = {
    "ids": {"summary": "Metadata of two items", "value": {"ids": ["red-1", "blue-1"], "indice_name": INDICE_NAME}}
}


class MetadataEntry(ResponseModel):
    id: str
    metadata: dict[str, Any]
