"""The OpenAPI document: every example works as sent by "Try it out"; every endpoint is typed."""

from __future__ import annotations

import base64
import io

import pytest
from apptools import make_settings
from PIL import Image

from app.main import create_app
from app.schemas import examples

SPEC = create_app(make_settings()).openapi()
JSON_EXAMPLES = [
    (path, name, example["value"])
    for path, item in SPEC["paths"].items()
    for op in item.values()
    for name, example in op.get("requestBody", {})
    .get("content", {})
    .get("application/json", {})
    .get("examples", {})
    .items()
]


def test_every_json_endpoint_has_examples():
    with_examples = {path for path, _, _ in JSON_EXAMPLES}
    json_posts = {
        path
        for path, item in SPEC["paths"].items()
        if "application/json" in item.get("post", {}).get("requestBody", {}).get("content", {})
    }
    assert json_posts == {
        "/embed", "/classify", "/classify/difference", "/rank", "/index/items", "/search", "/generate",
        "/v1/embeddings", "/knn-service", "/metadata",
    }
    assert with_examples == json_posts


@pytest.mark.parametrize(("path", "name", "body"), JSON_EXAMPLES, ids=[f"{p} {n}" for p, n, _ in JSON_EXAMPLES])
def test_every_example_succeeds_as_is(client, path, name, body):
    response = client.post(path, json=body)
    if path == "/generate":  # this client has no SDXL weights: a clear 503, not a validation error
        assert response.status_code == 503 and "PCCLIP_SDXL_MODEL" in response.text, response.text
        return
    assert response.status_code == 200, response.text


def test_every_endpoint_documents_its_response_model():
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if path in ("/metrics", "/generate/{job_id}/events", "/index/items/{item_id}/image"):
                continue  # plain text, an event stream, image files
            success = next(code for code in op["responses"] if code.startswith("2"))
            schema = op["responses"][success]["content"]["application/json"]["schema"]
            assert "$ref" in schema or schema.get("items"), (method, path)  # a model, or a typed list
            if method == "post":
                invalid = "400" if path.startswith("/v1/") else "422"  # /v1 answers invalid requests as OpenAI does
                assert {"401", "413", invalid, "429", "503"} <= op["responses"].keys(), path


@pytest.mark.parametrize(
    ("png_b64", "rgb"),
    [(examples.RED_PNG_B64, (255, 0, 0)), (examples.BLUE_PNG_B64, (0, 0, 255)), (examples.GREEN_PNG_B64, (0, 128, 0))],
)
def test_example_images_are_what_they_say(png_b64, rgb):
    image = Image.open(io.BytesIO(base64.b64decode(png_b64)))
    assert image.size == (8, 8)
    assert set(image.convert("RGB").getdata()) == {rgb}


def test_docs_page_is_served(client):
    response = client.get("/docs")
    assert response.status_code == 200 and "swagger" in response.text.lower()


@pytest.mark.parametrize(
    ("path", "allowed"), [("/index/items/x", {"GET", "DELETE"}), ("/generate/x", {"GET"}), ("/index", {"GET"})]
)
def test_a_405_lists_every_method_of_the_path(client, path, allowed):
    """Starlette named only the first matching route's methods (GET, not the DELETE beside it)."""
    response = client.request("PUT", path)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed


@pytest.mark.parametrize(
    "change",
    [{"alpha": False}, {"top_k": 1.5}, {"top_k": "2"}, {"labels": ["red", 1]}, {"images": [{"b64": 7}]}],
)
def test_values_of_another_json_type_are_refused_not_coerced(client, change):
    body = {"images": [examples.RED], "labels": ["red", "blue"], **change}
    assert client.post("/classify", json=body).status_code == 422


def test_the_documented_rules_match_what_is_enforced():
    """Found by fuzzing: the document said less than the validators enforce."""
    schemas = SPEC["components"]["schemas"]
    assert {"required": ["b64"], "properties": {"b64": {"not": {"type": "null"}}}} in schemas["ImageInput"]["oneOf"]
    assert len(schemas["SearchTerm"]["oneOf"]) == 5  # text, image, id, difference, vector
    assert schemas["EmbedRequest"]["anyOf"]
    assert schemas["GenerateRequest"]["properties"]["width"]["multipleOf"] == 8
    item_id = SPEC["paths"]["/index/items/{item_id}"]["get"]["parameters"][0]["schema"]
    assert item_id["maxLength"] == 256 and item_id["pattern"].startswith("^")


def test_the_document_states_this_servers_limits():
    spec = create_app(make_settings(max_items=7, max_text_chars=99, generation_max_steps=5, max_search_k=50)).openapi()
    schemas = spec["components"]["schemas"]
    texts = schemas["EmbedRequest"]["properties"]["texts"]
    assert texts["maxItems"] == 7 and texts["items"]["maxLength"] == 99
    assert schemas["SearchTerm"]["properties"]["difference"]["anyOf"][0]["maxLength"] == 99
    assert schemas["SearchRequest"]["properties"]["k"]["maximum"] == 50
    assert schemas["GenerateRequest"]["properties"]["steps"]["maximum"] == 5
    upload = next(schema for name, schema in schemas.items() if name.startswith("Body_embed_upload"))
    assert upload["properties"]["texts"]["anyOf"][0]["maxItems"] == 7
    assert schemas["ClassifyRequest"]["properties"]["template"]["maxLength"] == 99
    classify_upload = next(schema for name, schema in schemas.items() if name.startswith("Body_classify_upload"))
    assert classify_upload["properties"]["template"]["maxLength"] == 99
