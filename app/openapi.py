"""The OpenAPI document of a configured server: built under its settings, so the schemas write
its limits into it (`app.schemas.limits`) and `/docs`, generated clients and the fuzzer see what
this server accepts; the examples of `/v1/embeddings` name the served model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.schemas.limits import serving
from app.schemas.v1 import embeddings_examples
from app.settings import Settings


def document_limits(app: FastAPI, settings: Settings) -> None:
    """Make `app.openapi()` state `settings`' limits and name `settings.model` in the examples."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:  # built once
            return app.openapi_schema
        with serving(settings):
            schema = build()  # FastAPI's; it caches it on the app
        for operation in schema["paths"].get("/v1/embeddings", {}).values():  # they name the served model
            operation["requestBody"]["content"]["application/json"]["examples"] = embeddings_examples(settings.model)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
