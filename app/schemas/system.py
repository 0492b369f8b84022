"""Schemas of the operational endpoints: /health, /ready, /info."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.schemas.common import ResponseModel
from app.schemas.generate import GenerationInfo


class HealthResponse(ResponseModel):
    status: Literal["ok"] = "ok"


class ComponentState(ResponseModel):
    state: Literal["loading", "ready", "failed", "unavailable"] = Field(
        description="`failed`: cannot be served (the reason and what to do are in `detail`); "
        "`unavailable`: not configured."
    )
    detail: str | None = Field(None, description="Why the component is not ready, and what to do.")


class ReadyResponse(ResponseModel):
    ready: bool = Field(description="The model is loaded (and each component named in `require` is ready).")
    model: ComponentState
    index: ComponentState | None = Field(
        None, description="The search index (`PCCLIP_INDEX_DIR`); counts only with `require=index`."
    )
    generator: ComponentState | None = Field(
        None,
        description="SDXL generation (`PCCLIP_SDXL_MODEL`); `unavailable` when not configured; "
        "counts only with `require=generator`.",
    )
    detail: str | None = Field(None, description="Why `ready` is false: the first component that is not ready.")


class Capabilities(ResponseModel):
    embed: bool = True
    classify: bool = True
    difference: bool = True
    rank: bool = True
    index: bool = Field(False, description="Index and search endpoints are served.")
    generation: bool = Field(False, description="`/generate` is served (needs SDXL weights).")
    url_inputs: bool = Field(False, description='`{"url": ...}` image inputs are accepted.')
    auth: bool = Field(False, description="Model endpoints need a Bearer API key.")


class Limits(ResponseModel):
    max_items: int
    max_text_chars: int
    max_body_bytes: int
    max_image_pixels: int
    max_image_side: int
    max_batch: int


class InfoResponse(ResponseModel):
    spec: str = Field(description="Canonical model spec.")
    fingerprint: str = Field(description="sha256 over base spec and trained weights.")
    embed_dim: int
    device: str
    dtype: str
    notes: list[str] = Field(default_factory=list)
    capabilities: Capabilities
    limits: Limits
    generation: GenerationInfo | None = Field(
        None, description="SDXL generation: state, why it is unavailable, who fills which text-encoder slot."
    )
