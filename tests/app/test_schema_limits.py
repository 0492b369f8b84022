"""Limits live in the schemas (app.schemas.limits): one annotation per field, read from the
settings of the app at hand, drives both what the server refuses and what its document says."""

from __future__ import annotations

from typing import Annotated

import pytest
from apptools import b64, make_settings, shape
from pydantic import ValidationError

from app.main import create_app
from app.schemas import EmbedRequest
from app.schemas.common import RequestModel
from app.schemas.generate import GenerateRequest
from app.schemas.limits import MAX_CHARS, MAX_ITEMS, MaxItems, limit, serving

LIMITS = {"max_items": 3, "max_text_chars": 20, "max_search_k": 50, "max_search_terms": 2}
MODEL = "tiny-base"  # make_settings' model, the served one


def prop(schemas: dict, model: str, field: str, variant: int | None = None) -> dict:
    node = schemas[model]["properties"][field]
    return node if variant is None else node["anyOf"][variant]


# Fields the services used to check by hand: (request, where the document states it, the answer).
CASES = [
    ("/embed", {"json": {"texts": ["a"] * 4}}, ("EmbedRequest", "texts"), "maxItems", 3,
     "texts: 4 entries; at most 3 per request"),
    ("/classify", {"json": {"images": [b64(shape("red"))], "labels": ["red"], "template": "{}" + "x" * 19}},
     ("ClassifyRequest", "template"), "maxLength", 20, "template: 21 characters; at most 20"),
    ("/rank", {"json": {"ids": ["a"] * 4, "text": "larger"}}, ("RankRequest", "ids"), "maxItems", 3,
     "ids: 4 entries; at most 3 per request"),
    ("/search", {"json": {"terms": [{"text": "a"}], "k": 51}}, ("SearchRequest", "k"), "maximum", 50,
     "k: 51; at most 50"),
    ("/search", {"json": {"terms": [{"text": "a"}] * 3}}, ("SearchRequest", "terms"), "maxItems", 2,
     "terms: 3 entries; at most 2 per request"),
    ("/metadata", {"json": {"ids": ["a"] * 4}}, ("MetadataRequest", "ids"), "maxItems", 3,
     "ids: 4 entries; at most 3 per request"),
    ("/knn-service", {"json": {"text": "y" * 21}}, ("KnnRequest", "text", 0), "maxLength", 20,
     "text: 21 characters; at most 20"),
    ("/embed/upload", {"data": {"texts": ["fine", "z" * 21]}}, ("Body_embed_upload_embed_upload_post", "texts", 0),
     "maxItems", 3, "texts[1]: 21 characters; at most 20"),
    ("/v1/embeddings", {"json": {"model": MODEL, "input": ["a"] * 4}}, ("EmbeddingsRequest", "input", 1),
     "maxItems", 3, "input: 4 entries; at most 3 per request"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "request_kwargs", "where", "keyword", "bound", "message"), CASES,
                         ids=[f"{case[0]} {case[2][1]}" for case in CASES])  # fmt: skip
def test_one_definition_drives_the_refusal_and_the_document(
    make_client, path, request_kwargs, where, keyword, bound, message
):
    client = make_client(**LIMITS)
    response = client.post(path, **request_kwargs)
    if path.startswith("/v1/"):  # OpenAI's shape
        assert response.status_code == 400 and response.json()["error"]["message"] == message, response.text
    else:
        assert response.status_code == 422 and response.json()["detail"] == message, response.text
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert prop(schemas, *where)[keyword] == bound


class Probe(RequestModel):
    tags: Annotated[list[str], MAX_ITEMS]
    note: Annotated[str, MAX_CHARS] = ""


def test_a_newly_limited_field_needs_only_the_annotation(make_client, encoder):
    app = create_app(make_settings(max_items=2, max_text_chars=5), encoder=encoder)

    @app.post("/probe")
    async def probe(body: Probe) -> dict:
        return {"tags": len(body.tags)}

    client = make_client(app)
    assert client.post("/probe", json={"tags": ["a", "b"], "note": "12345"}).json() == {"tags": 2}
    many = client.post("/probe", json={"tags": ["a", "b", "c"]})
    assert many.status_code == 422
    assert many.json() == {
        "detail": "tags: 3 entries; at most 2 per request",
        "errors": [{"loc": ["body", "tags"], "msg": "3 entries; at most 2 per request", "type": "too_long"}],
    }
    long = client.post("/probe", json={"tags": [], "note": "123456"})
    assert long.status_code == 422 and long.json()["detail"] == "note: 6 characters; at most 5"
    properties = app.openapi()["components"]["schemas"]["Probe"]["properties"]
    assert properties["tags"]["maxItems"] == 2 and properties["note"]["maxLength"] == 5


def test_apps_of_one_process_keep_their_own_limits(make_client):
    small, large = make_client(max_items=2), make_client(max_items=5)
    body = {"texts": ["a", "b", "c"]}
    assert small.post("/embed", json=body).status_code == 422
    assert large.post("/embed", json=body).status_code == 200
    assert small.post("/embed", json=body).status_code == 422
    for client, bound in ((small, 2), (large, 5)):
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
        assert schemas["EmbedRequest"]["properties"]["texts"]["maxItems"] == bound


def test_a_list_is_counted_before_its_entries_are_validated(make_client):
    response = make_client(max_items=3).post("/embed", json={"texts": [" "] * 4})
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["body", "texts"]]  # not four "empty text"


def test_generation_limits_and_the_negative_prompt_are_bounded_by_the_schema():
    """(A server without SDXL weights answers /generate with 503 before reading the body.)"""
    settings = make_settings(generation_max_side=64, max_text_chars=10)
    job = {"prompt": "a forest", "width": 64, "height": 64}
    with serving(settings):
        assert GenerateRequest.model_validate({**job, "negative_prompt": "x" * 10}).width == 64
        with pytest.raises(ValidationError, match="72; at most 64"):
            GenerateRequest.model_validate({**job, "width": 72})
        with pytest.raises(ValidationError, match="11 characters; at most 10"):
            GenerateRequest.model_validate({**job, "negative_prompt": "x" * 11})
        with pytest.raises(ValidationError, match="1024; at most 64"):  # a default past the limit is no way round it
            GenerateRequest.model_validate({"prompt": "a forest", "height": 64})
    schemas = create_app(settings).openapi()["components"]["schemas"]
    assert prop(schemas, "GenerateRequest", "negative_prompt", 0)["maxLength"] == 10
    assert prop(schemas, "GenerateRequest", "height")["maximum"] == 64


def test_outside_a_server_there_is_no_bound():
    """`app.client` validates bodies before sending them: the server it talks to has the limits."""
    many = {"texts": ["a"] * 300}
    assert len(EmbedRequest.model_validate(many).texts) == 300
    assert "maxItems" not in EmbedRequest.model_json_schema()["properties"]["texts"]
    with pytest.raises(LookupError, match="max_items"):
        limit("max_items")
    with serving(make_settings(max_items=9)):
        assert limit("max_items") == 9
        with pytest.raises(ValidationError, match="300 entries; at most 9"):
            EmbedRequest.model_validate(many)
    assert len(EmbedRequest.model_validate(many).texts) == 300


def test_a_bound_must_name_a_setting():
    with pytest.raises(ValueError, match="'max_itemz' is not a setting"):
        MaxItems("max_itemz")
