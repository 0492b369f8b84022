"""Schemas of /generate: SDXL jobs conditioned on `prompt + Σ wᵢ · editᵢ`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from app.schemas.common import RequestModel, ResponseModel, Text
from app.schemas.limits import MAX_CHARS, MAX_ITEMS, Maximum

Side = Annotated[int, Maximum("generation_max_side")]


class EditTerm(RequestModel):
    text: Text = Field(description='A difference text, e.g. "snowier" or "the first is larger".')
    weight: float = Field(1.0, ge=-10, le=10, description="Its weight wᵢ; negative weights remove the property.")


class GenerateRequest(RequestModel):
    prompt: Text = Field(description="What to draw.")
    edits: Annotated[list[EditTerm], MAX_ITEMS] = Field(
        default_factory=list,
        description="Weighted edits added to the prompt's conditioning: prompt + Σ wᵢ · (editᵢ − '') "
        "on every token state and on the pooled vector (see `GET /info` → generation.arithmetic).",
    )
    negative_prompt: Annotated[str, MAX_CHARS] | None = Field(
        None, description="Plain negative prompt (no arithmetic)."
    )
    steps: Annotated[int, Maximum("generation_max_steps")] = Field(
        30, ge=1, validate_default=True, description="Denoising steps (at most PCCLIP_GENERATION_MAX_STEPS)."
    )
    guidance: float = Field(5.0, ge=0, le=50, description="Classifier-free guidance scale; ≤ 1 turns it off.")
    # Defaults are checked too: a server whose limits are below them refuses a request that omits them.
    width: Side = Field(
        1024, ge=8, multiple_of=8, validate_default=True, description="Image width in pixels, a multiple of 8."
    )
    height: Side = Field(
        1024, ge=8, multiple_of=8, validate_default=True, description="Image height in pixels, a multiple of 8."
    )
    seed: int | None = Field(
        None, ge=0, lt=2**63, description="Random seed; the same seed and inputs give the same image. Unset = random."
    )


GENERATE_EXAMPLES = {
    "snowier": {
        "summary": "A forest, snowier",
        "value": {
            "prompt": "a photo of a forest",
            "edits": [{"text": "snowier", "weight": 0.8}],
            "steps": 30,
            "guidance": 5.0,
            "width": 1024,
            "height": 1024,
            "seed": 0,
        },
    }
}


class GenerateAccepted(ResponseModel):
    job_id: str
    status_url: str = Field(description="`GET` it for status, progress and (when done) the image.")
    events_url: str = Field(description="Server-sent events of the job's progress.")


class PartStats(ResponseModel):
    mean_token_norm: float = Field(description="Mean over token positions of |E_t| (this encoder's features).")
    mean_token_norm_unedited: float = Field(description="The same for the prompt without edits.")
    cosine_to_prompt: float = Field(description="Mean over positions of cos(E_t, H(prompt)_t).")


class ConditioningReport(ResponseModel):
    encoders: dict[str, str] = Field(description="Who filled each slot: text_encoder, text_encoder_2, pooled.")
    pcclip_in_slot: bool = Field(description="The served PC-CLIP text tower filled SDXL's `text_encoder` slot.")
    fallback_reason: str | None = Field(description="Why it did not, when it did not.")
    arithmetic: str = Field(description="The formula applied.")
    edits: list[dict[str, Any]]
    parts: dict[str, PartStats] = Field(description="Statistics per encoder share of `prompt_embeds`.")
    pooled_norm: float
    pooled_norm_unedited: float
    pooled_cosine_to_prompt: float
    notes: list[str] = Field(default_factory=list)


JobStateName = Literal["queued", "running", "done", "failed", "cancelled"]


class JobStatusResponse(ResponseModel):
    job_id: str
    status: JobStateName
    progress: float = Field(ge=0, le=1, description="Denoising steps done / (steps + 1); 1 when done.")
    queue_position: int | None = Field(None, description="Jobs ahead of this one (0 = next), while queued.")
    cancel_requested: bool = False
    created_at: float = Field(description="Unix time.")
    finished_at: float | None = None
    seed: int
    error: str | None = Field(None, description="Why the job failed.")
    image_png_b64: str | None = Field(None, description="The image, base64 PNG, when done.")
    report: ConditioningReport | None = Field(None, description="Which encoder did what, and conditioning statistics.")


class GenerationInfo(ResponseModel):
    """What `/info` says about generation."""

    state: Literal["unavailable", "loading", "ready", "failed"]
    detail: str | None = Field(None, description="Why generation is not served.")
    sdxl_model: str | None = None
    encoders: dict[str, str] | None = None
    pcclip_in_slot: bool | None = None
    fallback_reason: str | None = None
    arithmetic: str | None = None
    notes: list[str] = Field(default_factory=list)
