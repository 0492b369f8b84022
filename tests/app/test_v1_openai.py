"""The OpenAI-compatible API, driven by the official `openai` client against a live loopback
server: the vectors are /embed's, images go in as infinity and Jina send them, errors are
OpenAI's shape (raised by the client as its own exception types)."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest
from apptools import b64, make_settings, png, shape
from test_multipart_limits import loopback_server

from app.main import create_app

KEY = "sk-pcclip-test"
MODEL = "tiny-base"


@pytest.fixture(scope="module")
def server(encoder):
    app = create_app(make_settings(api_key=KEY), encoder=encoder)
    with loopback_server(app) as (host, port):
        yield f"http://{host}:{port}"


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0) as client:
        yield client


def embed(server, **body) -> dict:
    response = httpx.post(f"{server}/embed", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def data_uri(image) -> str:
    return "data:image/png;base64," + base64.b64encode(png(image)).decode()


TEXTS = ["a red circle", "a blue square", "the first is redder than the second"]


@pytest.mark.parametrize("encoding", [None, "float"])  # None: the client's default, base64 on the wire
def test_texts_give_the_vectors_of_embed(server, client, encoding):
    options = {} if encoding is None else {"encoding_format": encoding}
    answer = client.embeddings.create(model=MODEL, input=TEXTS, **options)
    assert [item.index for item in answer.data] == [0, 1, 2] and answer.model == MODEL
    assert [item.embedding for item in answer.data] == embed(server, texts=TEXTS)["text_embeddings"]
    assert answer.usage.prompt_tokens == sum(len(text) for text in TEXTS)


def test_the_wire_format_of_base64_is_little_endian_float32(server, client):
    raw = client.embeddings.with_raw_response.create(model=MODEL, input="a red circle", encoding_format="base64")
    encoded = raw.http_response.json()["data"][0]["embedding"]
    vector = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    assert vector.tolist() == embed(server, texts=["a red circle"])["text_embeddings"][0]


def test_images_as_data_uris_with_modality_give_the_vectors_of_embed(server, client):
    images = [shape("red"), shape("blue", "square")]
    answer = client.embeddings.create(
        model=MODEL, input=[data_uri(image) for image in images], extra_body={"modality": "image"}
    )
    expected = embed(server, images=[b64(image) for image in images])["image_embeddings"]
    assert [item.embedding for item in answer.data] == expected


def test_mixed_text_and_image_objects_come_back_in_input_order(server, client):
    mixed = [{"image": data_uri(shape("green"))}, {"text": "a green circle"}, {"image": data_uri(shape("red"))}]
    answer = client.embeddings.create(model=MODEL, input=mixed, encoding_format="float")  # type: ignore[arg-type]
    native = embed(server, texts=["a green circle"], images=[b64(shape("green")), b64(shape("red"))])
    images, texts = native["image_embeddings"], native["text_embeddings"]
    assert [item.embedding for item in answer.data] == [images[0], texts[0], images[1]]


def test_a_dimensions_mismatch_is_a_400_in_openais_shape(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model=MODEL, input="a red circle", dimensions=7)
    assert refused.value.status_code == 400
    body = refused.value.body
    assert body["type"] == "invalid_request_error" and body["param"] == "dimensions" and body["code"] is None
    assert "7" in body["message"] and "384" in body["message"]
    assert set(refused.value.response.json()) == {"error"}


@pytest.mark.parametrize(
    ("change", "param", "expected"),
    [
        ({"encoding_format": "int8"}, "encoding_format", "encoding_format"),
        ({"input": [[101, 2417]]}, "input", "token arrays"),
        ({"input": []}, "input", "at least one"),
        ({"input": ["fine", " "]}, None, "input[1]: empty text"),
        ({"input": ["not base64!"], "modality": "image"}, None, "input[0]: invalid base64"),
        ({"input": ["http://example.com/a.png"], "modality": "image"}, None, "PCCLIP_ALLOW_URL_FETCH"),
        ({"input": [{"video": "x"}]}, "input", "expected a string"),
        ({"colour": "red"}, "colour", "colour"),
    ],
)
def test_bad_requests_are_400_with_the_reason(client, change, param, expected):
    body = {"model": MODEL, "input": "a red circle", **change}
    with pytest.raises(openai.BadRequestError) as refused:
        client.post("/embeddings", body=body, cast_to=httpx.Response)
    assert refused.value.body["param"] == param
    assert expected in refused.value.body["message"]


def test_another_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as refused:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert refused.value.body["code"] == "model_not_found" and MODEL in refused.value.body["message"]


def test_the_api_key_is_required(server):
    stranger = openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError) as refused:
        stranger.embeddings.create(model=MODEL, input="x")
    assert refused.value.body["code"] == "invalid_api_key" and "API key" in refused.value.body["message"]


def test_models_lists_the_served_model(client, encoder):
    (model,) = client.models.list().data
    assert model.id == MODEL and model.object == "model" and model.owned_by == "pcclip" and model.created > 0
    assert len(client.embeddings.create(model=model.id, input="x").data[0].embedding) == encoder.embed_dim


def test_the_limits_of_embed_hold(make_client):
    http = make_client(max_items=2)
    response = http.post("/v1/embeddings", json={"model": MODEL, "input": ["a", "b", "c"]})
    assert response.status_code == 400 and "at most 2 per request" in response.json()["error"]["message"]
    oversized = make_client(max_body_bytes=4096).post("/v1/embeddings", json={"model": MODEL, "input": "x" * 5000})
    assert oversized.status_code == 413 and "PCCLIP_MAX_BODY_BYTES" in oversized.json()["error"]["message"]
