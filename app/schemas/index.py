"""Schemas of the index (/index, /index/items) and of /search."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from app.errors import InvalidInput
from app.index.filters import MAX_FILTER_DEPTH, MAX_FILTER_TERMS
from app.index.metadata import MAX_METADATA_BYTES, MAX_METADATA_DEPTH
from app.index.validation import ID_PATTERN, MAX_ID_CHARS, check_id
from app.schemas.common import ImageInput, RequestModel, ResponseModel, Text, exactly_one_of
from app.schemas.examples import BLUE, RED
from app.schemas.limits import MAX_ITEMS, Maximum, MaxItems

ID_DESCRIPTION = (
    "The item's id: letters, digits and `. _ - : @ + =`, up to 256 characters "
    "(no `/`, `\\`, `..`, spaces or leading `.`)."
)
# The id rule in the OpenAPI document; check_id enforces it (with a message that says the rule).
ID_SCHEMA = {"pattern": f"^{ID_PATTERN.pattern}$", "maxLength": MAX_ID_CHARS}


def _valid_id(item_id: str) -> str:
    try:
        return check_id(item_id)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


METADATA_DESCRIPTION = (
    f"A JSON object of at most {MAX_METADATA_BYTES // 1024} KiB (as UTF-8 JSON), objects and arrays nested at most "
    f"{MAX_METADATA_DEPTH} levels deep (the object itself is level 1), finite numbers only (NaN and ±Infinity "
    "are refused)."
)
METADATA_PROBLEM_DESCRIPTION = (
    "Null, unless the stored metadata breaks the metadata rules (an item written before they were enforced): "
    "then `metadata` is empty and this says what is wrong. Replacing the item clears it."
)

ItemId = Annotated[str, Field(description=ID_DESCRIPTION, json_schema_extra=ID_SCHEMA), AfterValidator(_valid_id)]


# --- index ---------------------------------------------------------------------------------


class IndexItemInput(RequestModel):
    id: ItemId | None = Field(None, description=ID_DESCRIPTION + " Omitted: a random id is assigned.")
    image: ImageInput = Field(description="The image to embed; its bytes are kept for re-embedding.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description=METADATA_DESCRIPTION + " `/search` can filter on its keys."
    )


class AddItemsRequest(RequestModel):
    items: Annotated[list[IndexItemInput], MAX_ITEMS] = Field(
        min_length=1, description="Items to add; an item whose id is already indexed is replaced."
    )


ADD_EXAMPLES = {
    "two": {
        "summary": "Index two images",
        "value": {
            "items": [
                {"id": "red-1", "image": RED, "metadata": {"colour": "red"}},
                {"id": "blue-1", "image": BLUE, "metadata": {"colour": "blue"}},
            ]
        },
    }
}


class AddItemsResponse(ResponseModel):
    added: list[str] = Field(description="Ids that were new.")
    replaced: list[str] = Field(description="Ids that were indexed before and are now replaced.")
    size: int = Field(description="Items in the index after the write.")


class IndexItem(ResponseModel):
    id: str
    metadata: dict[str, Any]
    has_source: bool = Field(description="The source image is stored (so `pcclip index rebuild` can re-embed it).")
    metadata_problem: str | None = Field(None, description=METADATA_PROBLEM_DESCRIPTION)


class DeleteResponse(ResponseModel):
    deleted: str
    size: int


class IndexInfo(ResponseModel):
    """What the serving backend reports; a field it cannot report is null."""

    backend: str = Field(
        description="The index backend that serves: `faiss` (embedded, in PCCLIP_INDEX_DIR) or `milvus` "
        "(a Milvus collection, PCCLIP_MILVUS_URI)."
    )
    size: int = Field(description="Items in the index.")
    fingerprint: str = Field(description="Fingerprint of the model whose embeddings the index holds.")
    embed_dim: int
    index_type: str = Field(description="`flat` (exact inner product) or `hnsw` (approximate).")
    exact: bool = Field(description="Searches are exact.")
    ef_search: int | None = Field(None, description="HNSW search beam width (FAISS approximate indexes).")
    deleted_rows: int | None = Field(
        None, description="Deleted or replaced rows awaiting compaction at the next snapshot (`faiss`)."
    )
    wal_records: int | None = Field(
        None, description="Writes in the write-ahead log since the last snapshot (`faiss`)."
    )
    metadata_problems: int | None = Field(
        None,
        description="Items whose stored metadata breaks the metadata rules (see `metadata_problem` of an item; "
        "`faiss`: Milvus would have to read every item to count them).",
    )
    collection: str | None = Field(None, description="The Milvus collection (`milvus`).")


# --- search --------------------------------------------------------------------------------

TERM_KINDS = ("text", "image", "id", "difference", "vector")


class SearchTerm(RequestModel):
    """One term of a query expression: exactly one of `text`, `image`, `id`, `difference`, `vector`."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of(*TERM_KINDS))

    text: Text | None = Field(None, description='A description of what to find, e.g. "a snowy forest".')
    image: ImageInput | None = Field(None, description="An image to find things like.")
    id: ItemId | None = Field(None, description="An indexed item, by id: its stored embedding.")
    difference: Text | None = Field(
        None,
        description='A PC-CLIP difference text — a direction to move along, e.g. "the first is snowier than '
        'the second" or simply "snowier". A negative weight moves the other way.',
    )
    vector: list[float] | None = Field(
        None,
        min_length=1,
        description="An embedding you already have (e.g. from `/embed`), of the index's size (`GET /index` "
        "`embed_dim`), finite and not all zeros; it is normalized like every term.",
    )
    weight: float = Field(
        1.0,
        ge=-100,
        le=100,
        description="The term's weight (default 1; may be negative, not 0).",
        json_schema_extra={"not": {"const": 0}},
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SearchTerm:
        given = [name for name in TERM_KINDS if getattr(self, name) is not None]
        if len(given) != 1:
            names = ", ".join(f'"{name}"' for name in TERM_KINDS)
            raise ValueError(f"give exactly one of {names} (got {given or 'none'})")
        if self.weight == 0:
            raise ValueError("weight must not be 0")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in TERM_KINDS if getattr(self, name) is not None)


SEARCH_DESCRIPTION = """\
Search the index with an expression over embeddings.

**Combination rule.** Each term is embedded — `text` and `difference` by the text tower, `image`
by the image tower, `id` is the indexed item's stored embedding, `vector` is an embedding given
as numbers (of the index's `embed_dim`, finite, not zero) — and L2-normalized to v̂ᵢ. The
query is `q = normalize(Σᵢ wᵢ · v̂ᵢ)` (weights default to 1; a term list that cancels out is a
422). Hits are the `k` indexed items with the highest cosine `score = q · x̂`.

A `difference` term is a PC-CLIP difference text: the model was trained so that f("the first
is snowier …") ≈ ĝ(I₁) − ĝ(I₂), so adding it moves the query in that direction ("this image,
but snowier": `[{"id": "forest-17"}, {"difference": "snowier", "weight": 0.8}]`). A `text`
term is combined the same way; the two names say what the text means.

**Contributions.** Each hit carries `contributions[i] = wᵢ · cos(v̂ᵢ, x̂)`, one per term in
request order; their sum is `score · ‖Σᵢ wᵢ v̂ᵢ‖`, so they show which term drew the hit.

Items named by `id` terms are left out of the hits unless `include_query_items` is true.
`filter` keeps the items whose metadata it matches (see the `filter` field).
`min_score` leaves out hits whose score is below it (so fewer than `k` may come back).
"""


FILTER_DESCRIPTION = (
    'Conditions on metadata keys (MongoDB\'s operators): `{"colour": "red"}` is plain equality; '
    '`$eq $ne $gt $gte $lt $lte $in $nin` on a key (`{"year": {"$gte": 2020}}`), `$and`/`$or` over '
    "lists of filters; several keys at one level must all hold. Values are strings, finite numbers, booleans "
    "or null, compared only within a type; a missing key matches only `$ne` and `$nin`, and `null` matches a "
    f"missing or null key. At most {MAX_FILTER_DEPTH} nested `$and`/`$or` levels and {MAX_FILTER_TERMS} "
    "conditions and `$in`/`$nin`/`$and`/`$or` entries in all; a bad filter is a 422 naming its place."
)


class SearchRequest(RequestModel):
    terms: Annotated[list[SearchTerm], MaxItems("max_search_terms")] = Field(
        min_length=1, description="The expression's terms (see the combination rule)."
    )
    k: Annotated[int, Maximum("max_search_k")] = Field(
        10, ge=1, description="Hits to return (at most PCCLIP_MAX_SEARCH_K)."
    )
    filter: dict[str, Any] | None = Field(
        None,
        description=FILTER_DESCRIPTION,
        examples=[
            {"colour": "red"},
            {"year": {"$gte": 2020, "$lt": 2024}, "tag": {"$in": ["a", "b"]}},
            {"$or": [{"colour": "red"}, {"score": {"$gt": 0.5}}]},
        ],
    )
    min_score: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="A relevance cut-off: hits whose `score` (a cosine, -1 to 1) is below it are left out.",
    )
    include_query_items: bool = Field(False, description="Also return the items named by `id` terms.")


SEARCH_EXAMPLES = {
    "redder": {
        "summary": "This image, but redder",
        "value": {"terms": [{"image": BLUE}, {"difference": "the first is redder than the second", "weight": 0.8}]},
    },
    "filtered": {
        "summary": "A text, filtered on metadata",
        "value": {"terms": [{"text": "a red square"}], "k": 5, "filter": {"colour": "red"}},
    },
    "operators": {
        "summary": "A text, filtered with operators and a score cut-off",
        "value": {
            "terms": [{"text": "a red square"}],
            "k": 5,
            "filter": {"year": {"$gte": 2020}, "colour": {"$in": ["red", "orange"]}},
            "min_score": 0.2,
        },
    },
}


class SearchHit(ResponseModel):
    id: str
    score: float = Field(description="Cosine similarity of the item with the query.")
    metadata: dict[str, Any]
    metadata_problem: str | None = Field(None, description=METADATA_PROBLEM_DESCRIPTION)
    contributions: list[float] = Field(description="Per term, in request order: weight × cos(term, item).")


class SearchResponse(ResponseModel):
    hits: list[SearchHit] = Field(description="Best first.")
    index_type: str = Field(description="`flat` (exact) or `hnsw` (approximate) — the index that answered.")
