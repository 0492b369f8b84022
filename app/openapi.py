"""The OpenAPI document of a configured server: its limits (settings) written into the request
schemas, so `/docs`, generated clients and the fuzzer see what this server accepts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI

from app.schemas.common import TEXT_PATTERN  # marks `app.schemas.common.Text`
from app.schemas.v1 import embeddings_examples
from app.settings import Settings


def document_limits(app: FastAPI, settings: Settings) -> None:
    """Make `app.openapi()` state `settings`' limits: list lengths, text lengths, search and
    generation bounds. The services enforce the same limits (422 with the reason). The examples
    of `/v1/embeddings` get the configured model's name."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:  # built and limited once
            return app.openapi_schema
        schema = build()  # FastAPI's; it caches it on the app
        components = schema["components"]["schemas"]
        for name in _request_schemas(schema):
            _limit(name, components[name], settings)
        for operation in schema["paths"].get("/v1/embeddings", {}).values():  # they name the served model
            operation["requestBody"]["content"]["application/json"]["examples"] = embeddings_examples(settings.model)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _request_schemas(schema: dict[str, Any]) -> set[str]:
    """Names of the component schemas request bodies use, with those they refer to."""
    components = schema["components"]["schemas"]
    found: set[str] = set()
    pending = [
        media["schema"]
        for item in schema["paths"].values()
        for operation in item.values()
        for media in operation.get("requestBody", {}).get("content", {}).values()
    ]
    while pending:
        for name in _refs(pending.pop()):
            if name not in found:
                found.add(name)
                pending.append(components[name])
    return found


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"].rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _limit(name: str, schema: dict[str, Any], settings: Settings) -> None:
    multipart = name.startswith("Body_")  # FastAPI's form schemas: their string lists are texts or labels
    for field, prop in schema.get("properties", {}).items():
        for variant in (prop, *prop.get("anyOf", ())):
            if variant.get("type") == "array":
                variant["maxItems"] = settings.max_search_terms if field == "terms" else settings.max_items
                items = variant.get("items", {})
                if items.get("pattern") == TEXT_PATTERN or (multipart and items.get("type") == "string"):
                    items["maxLength"] = settings.max_text_chars
            elif variant.get("pattern") == TEXT_PATTERN or field == "template":  # a template is a prompt too
                variant["maxLength"] = settings.max_text_chars
    properties = schema.get("properties", {})
    if name == "SearchRequest":
        properties["k"]["maximum"] = settings.max_search_k
    if name == "GenerateRequest":
        properties["steps"]["maximum"] = settings.generation_max_steps
        for side in ("width", "height"):
            properties[side]["maximum"] = settings.generation_max_side
