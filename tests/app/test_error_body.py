"""One error body on the native API: `detail` is always one message; validation failures add
`errors` (per field); the OpenAPI document declares the same model on every error answer."""

from __future__ import annotations

import pytest
from apptools import make_settings
from fastapi.testclient import TestClient

from app.main import create_app

SPEC = create_app(make_settings()).openapi()


@pytest.mark.parametrize(
    ("body", "field", "where"),
    [
        ({"labels": ["red"]}, "images", ["body", "images"]),
        ({"images": [{"b64": 5}], "labels": ["red"]}, "images[0].b64", ["body", "images", 0, "b64"]),
        ({"images": [{"b64": "AAAA"}], "labels": ["red"], "labelz": 1}, "labelz", ["body", "labelz"]),
    ],
)
def test_a_validation_failure_has_one_message_and_the_fields(client, body, field, where):
    response = client.post("/classify", json=body)
    assert response.status_code == 422
    answer = response.json()
    assert set(answer) == {"detail", "errors"}
    assert isinstance(answer["detail"], str) and answer["detail"].startswith(f"{field}: ")
    assert [error["loc"] for error in answer["errors"]] == [where]
    assert set(answer["errors"][0]) == {"loc", "msg", "type"}


def test_a_json_syntax_error_names_the_body(client):
    response = client.post("/embed", content=b'{"texts": [', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("body[")


def test_a_validator_message_is_shown_without_pydantics_prefix(client):
    response = client.post("/embed", json={})
    assert response.status_code == 422
    assert response.json()["detail"] == 'body: give at least one entry in "texts" or "images"'


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("get", "/index/items/nope", 404), ("get", "/no-such-path", 404), ("put", "/embed", 405)],
)
def test_other_errors_have_only_a_message(client, method, path, status):
    response = client.request(method, path)
    assert response.status_code == status
    assert set(response.json()) == {"detail"} and isinstance(response.json()["detail"], str)


def test_a_body_over_the_limit_has_the_same_shape(make_client):
    response = make_client(max_body_bytes=4096).post("/embed", json={"texts": ["x" * 5000]})
    assert response.status_code == 413 and set(response.json()) == {"detail"}


def test_a_server_fault_has_the_same_shape(encoder):
    app = create_app(make_settings(), encoder=encoder)

    @app.get("/fault")
    async def fault() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/fault")
    assert response.status_code == 500
    assert set(response.json()) == {"detail"} and "a bug" not in response.text


def test_every_error_answer_of_the_document_is_the_error_model():
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if status[0] not in "45" or (path, status) == ("/ready", "503"):  # /ready: its status body
                    continue
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                expected = "OpenAIErrorResponse" if path.startswith("/v1/") else "ErrorResponse"
                assert schema.get("$ref") == f"#/components/schemas/{expected}", (method, path, status)
    assert "HTTPValidationError" not in SPEC["components"]["schemas"]
