"""SDXL bridge: PC-CLIP in SDXL's `text_encoder` slot, and `prompt + Σ wᵢ · editᵢ` as conditioning.

SDXL conditions its UNet on two text encoders (PAPER.md, last section):
  - `text_encoder` (OpenAI CLIP ViT-L/14): per-token hidden states of the penultimate layer,
    (L, 768) — the first 768 features of `prompt_embeds`;
  - `text_encoder_2` (OpenCLIP ViT-bigG): per-token penultimate states (L, 1280) — the other
    features of `prompt_embeds` — and the projected EOS state, `pooled_prompt_embeds` (1280).
A PC-CLIP of the ViT-L/14 architecture takes the `text_encoder` slot after conversion
(`models.generation.convert`); any other served model cannot, and then the arithmetic runs on
the pipeline's own two encoders. Every result says which encoder did what.

`SDXLBridge.generate` reads like a diffusers pipeline: 1. check inputs, 2. fresh scheduler,
3. encode the prompt with its edits, 4. denoise (the step callback reports progress and may
raise `Cancelled`), 5. decode and report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from models.encoder import Encoder, resolve_device, resolve_precision
from models.generation.convert import can_convert, text_config, to_transformers

log = logging.getLogger(__name__)

SLOT_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
)
SDXL_BASE = "openclip:ViT-L-14/openai"  # the text tower SDXL's UNet was trained on
StepCallback = Callable[[int, int], None]  # (steps done, steps in all); may raise Cancelled


class Cancelled(Exception):  # noqa: N818 — a signal, not an error
    """Raised by a step callback to stop a generation between two denoising steps."""


@dataclass(frozen=True)
class Edit:
    text: str
    weight: float = 1.0


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    edits: tuple[Edit, ...] = ()
    negative_prompt: str | None = None
    steps: int = 30
    guidance: float = 5.0
    width: int = 1024
    height: int = 1024
    seed: int = 0


@dataclass(frozen=True)
class PartStats:
    """Statistics of one encoder's share of `prompt_embeds` (positions t = 0 … L−1)."""

    mean_token_norm: float  # mean over t of |E_t|
    mean_token_norm_unedited: float  # the same for the prompt alone
    cosine_to_prompt: float  # mean over t of cos(E_t, H(prompt)_t)


@dataclass(frozen=True)
class ConditioningReport:
    """Which encoder did what, the arithmetic used, and what it did to the conditioning."""

    encoders: dict[str, str]  # slot → who filled it
    pcclip_in_slot: bool
    fallback_reason: str | None
    arithmetic: str
    edits: list[dict[str, Any]]
    parts: dict[str, PartStats]  # "text_encoder", "text_encoder_2"
    pooled_norm: float
    pooled_norm_unedited: float
    pooled_cosine_to_prompt: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Conditioning:
    prompt_embeds: torch.Tensor  # (1, L, D1 + D2)
    pooled_prompt_embeds: torch.Tensor  # (1, P)
    negative_prompt_embeds: torch.Tensor  # (1, L, D1 + D2)
    negative_pooled_prompt_embeds: torch.Tensor  # (1, P)
    report: ConditioningReport


@dataclass
class GenerationResult:
    image: Image.Image
    report: ConditioningReport
    seed: int


ARITHMETIC = (
    "per token position t: E_t = H(prompt)_t + Σ wᵢ · (H(editᵢ)_t − H('')_t), on the concatenated "
    "penultimate states of both text encoders; pooled: p = p(prompt) + Σ wᵢ · (p(editᵢ) − p(''))"
)


def edit_arithmetic(
    prompt: torch.Tensor, empty: torch.Tensor, edits: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """`prompt + Σ wᵢ · editᵢ` on text-encoder outputs, each edit measured from the empty prompt.

        result = prompt + Σ wᵢ · (editᵢ − empty)

    prompt, empty (*S); edits (K, *S); weights (K,)  -> (*S). Used on per-token hidden states
    (S = L, D) and on pooled vectors (S = P). Why the difference from the empty prompt ''
    rather than the raw edit states:
      - a text encoder's output is "what every text has" plus "what this text says". Adding
        raw edit states would add the shared part once per edit, inflating norms the UNet never
        saw in training; (editᵢ − empty) is only what the edit says — the same move PC-CLIP
        makes when a difference text stands for g(I1) − g(I2);
      - CLIP text towers are causal, so position 0 (the start token) is identical for every
        text: its edit difference is exactly zero and the start-token state — which SDXL's
        cross-attention leans on heavily — stays the prompt's own;
      - positions past an edit's end token hold padding states that have attended to the
        whole edit: their difference from the empty prompt's padding carries the edit's
        sentence-level meaning across the tail of the sequence;
      - it is linear: weight 0 (or no edits) gives exactly the prompt's conditioning, weights
        add, and a negative weight removes a property ("prompt − snowier").
    """
    deltas = edits - empty.unsqueeze(0)  # (K, *S)
    shape = (-1,) + (1,) * (deltas.ndim - 1)
    return prompt + (weights.to(deltas.dtype).view(shape) * deltas).sum(dim=0)


def load_pipeline(source: str, *, device: str | torch.device = "auto", precision: str = "auto"):
    """`StableDiffusionXLPipeline.from_pretrained(source)` (a local folder or a hub id) on `device`."""
    from diffusers import StableDiffusionXLPipeline

    target = resolve_device(device)
    dtype = resolve_precision(target, precision)
    # safetensors only: a folder with pickled .bin weights is refused, never unpickled.
    pipe = StableDiffusionXLPipeline.from_pretrained(source, dtype=dtype, use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(target)


def slot_fit(encoder: Encoder | None, slot: torch.nn.Module | None) -> tuple[bool, str]:
    """Whether `encoder`'s text tower can take the pipeline's `text_encoder` slot, and why not."""
    if encoder is None:
        return False, "no PC-CLIP model is loaded"
    name = encoder.spec
    if slot is None:
        return False, "the SDXL pipeline has no `text_encoder` slot (e.g. a refiner)"
    ok, reason = can_convert(encoder)
    if not ok:
        return False, f"model {name} cannot take SDXL's text_encoder slot: {reason}"
    ours, theirs = text_config(encoder.model), slot.config
    mismatched = [
        f"{key} {ours[key]} (slot: {getattr(theirs, key)})" for key in SLOT_KEYS if ours[key] != getattr(theirs, key)
    ]
    if mismatched:
        return False, f"model {name} does not fit SDXL's text_encoder slot: its text tower has " + ", ".join(mismatched)
    return True, ""


class SDXLBridge:
    """An SDXL pipeline whose conditioning is built by embedding arithmetic.

    With a fitting PC-CLIP `encoder`, `self.pipe` is a view of `pipe` whose `text_encoder` slot
    holds the converted text tower (`with_pcclip_slot`); otherwise `self.pipe` is `pipe` with its
    own encoders and `fallback_reason` says why. The given pipeline is never changed. Not
    thread-safe: one worker (the GPU owner) drives it.
    """

    def __init__(self, pipe, encoder: Encoder | None = None) -> None:
        self.pcclip_in_slot, reason = slot_fit(encoder, pipe.text_encoder)
        self.fallback_reason = None if self.pcclip_in_slot else reason
        self.notes: list[str] = []
        slot_owner = f"pipeline's own ({_name_of(pipe.text_encoder)})"
        if self.pcclip_in_slot:
            assert encoder is not None
            pipe = with_pcclip_slot(pipe, encoder)
            slot_owner = f"PC-CLIP {encoder.spec} (fingerprint {encoder.fingerprint[:12]}), converted from open_clip"
            if encoder.base != SDXL_BASE:
                self.notes.append(
                    f"PC-CLIP base {encoder.base} is not {SDXL_BASE}: the UNet was trained on OpenAI CLIP "
                    "features, so expect poor images"
                )
        else:
            log.info("generation falls back to the pipeline's own text encoders: %s", reason)
        self.pipe = pipe
        self.encoders = {
            "text_encoder": slot_owner,
            "text_encoder_2": f"pipeline's own ({_name_of(pipe.text_encoder_2)})",
            "pooled": "text_encoder_2 (projected end-of-text state)",
        }

    def describe(self) -> dict[str, Any]:
        """For `/info`: who fills which slot, and why PC-CLIP does not when it does not."""
        return {
            "encoders": dict(self.encoders),
            "pcclip_in_slot": self.pcclip_in_slot,
            "fallback_reason": self.fallback_reason,
            "arithmetic": ARITHMETIC,
            "notes": list(self.notes),
        }

    # --- conditioning --------------------------------------------------------------------

    @torch.inference_mode()
    def text_states(self, texts: Sequence[str]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per-encoder penultimate hidden states and the pooled vectors of `texts`, as SDXL
        computes them.  -> [(N, L, D1), (N, L, D2)], (N, P)"""
        pipe = self.pipe
        pairs = [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)]
        states: list[torch.Tensor] = []
        pooled = None
        for tokenizer, text_encoder in pairs:
            if text_encoder is None:
                continue
            ids = tokenizer(
                list(texts),
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids  # (N, L)
            out = text_encoder(ids.to(text_encoder.device), output_hidden_states=True)
            states.append(out.hidden_states[-2])  # (N, L, Dk): penultimate layer, as SDXL uses
            if out[0].ndim == 2:  # CLIPTextModelWithProjection: text_embeds (N, P)
                pooled = out[0]
        if pooled is None:
            raise ValueError("the pipeline's text_encoder_2 gives no pooled vector (needs CLIPTextModelWithProjection)")
        return states, pooled

    def encode(self, prompt: str, edits: Sequence[Edit] = (), negative_prompt: str | None = None) -> Conditioning:
        """SDXL conditioning of `prompt + Σ wᵢ · editᵢ` (see `edit_arithmetic`) and its report."""
        texts = [prompt, "", *(edit.text for edit in edits)]
        states, pooled = self.text_states(texts)  # [(N, L, Dk)], (N, P)
        hidden = torch.cat(states, dim=-1)  # (N, L, D)
        weights = torch.tensor([edit.weight for edit in edits], dtype=hidden.dtype, device=hidden.device)  # (K,)
        embeds = edit_arithmetic(hidden[0], hidden[1], hidden[2:], weights)  # (L, D)
        pooled_embeds = edit_arithmetic(pooled[0], pooled[1], pooled[2:], weights)  # (P,)

        if negative_prompt:
            negative_states, negative_pooled = self.text_states([negative_prompt])
            negative, negative_p = torch.cat(negative_states, dim=-1)[0], negative_pooled[0]
        elif self.pipe.config.force_zeros_for_empty_prompt:
            negative, negative_p = torch.zeros_like(embeds), torch.zeros_like(pooled_embeds)
        else:
            negative, negative_p = hidden[1], pooled[1]

        widths = {name: s.shape[-1] for name, s in zip(("text_encoder", "text_encoder_2"), states, strict=False)}
        report = ConditioningReport(
            encoders=dict(self.encoders),
            pcclip_in_slot=self.pcclip_in_slot,
            fallback_reason=self.fallback_reason,
            arithmetic=ARITHMETIC,
            edits=[{"text": edit.text, "weight": edit.weight} for edit in edits],
            parts=_part_stats(embeds, hidden[0], widths),
            pooled_norm=float(pooled_embeds.float().norm()),
            pooled_norm_unedited=float(pooled[0].float().norm()),
            pooled_cosine_to_prompt=float(F.cosine_similarity(pooled_embeds.float(), pooled[0].float(), dim=0)),
            notes=list(self.notes),
        )
        return Conditioning(embeds[None], pooled_embeds[None], negative[None], negative_p[None], report)

    # --- generation ----------------------------------------------------------------------

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        """One image for `request`. `on_step(done, total)` runs after every denoising step;
        raising `Cancelled` there stops the job before the next step."""
        # 1. Check inputs
        check_request(request)

        # 2. A pipeline view with a fresh scheduler: no scheduler state or interrupt flag is
        #    shared between jobs (the modules — the weights — are shared, read-only).
        pipe = self.pipe
        job = pipeline_view(pipe, scheduler=type(pipe.scheduler).from_config(pipe.scheduler.config))

        # 3. Encode input prompt with its edits
        conditioning = self.encode(request.prompt, request.edits, request.negative_prompt)

        # 4. Denoising loop (diffusers'), with progress and cancellation from the step callback
        def step_end(job_pipe, step: int, timestep, tensors: dict) -> dict:
            if on_step is not None:
                on_step(step + 1, job_pipe.num_timesteps)
            return tensors

        generator = torch.Generator(device=pipe.device).manual_seed(request.seed)
        with torch.inference_mode():
            output = job(
                prompt_embeds=conditioning.prompt_embeds,
                pooled_prompt_embeds=conditioning.pooled_prompt_embeds,
                negative_prompt_embeds=conditioning.negative_prompt_embeds,
                negative_pooled_prompt_embeds=conditioning.negative_pooled_prompt_embeds,
                num_inference_steps=request.steps,
                guidance_scale=request.guidance,
                width=request.width,
                height=request.height,
                generator=generator,
                callback_on_step_end=step_end,
                output_type="pil",
            )

        # 5. Decoded image and the conditioning report
        return GenerationResult(image=output.images[0], report=conditioning.report, seed=request.seed)


def pipeline_view(pipe, **replace: Any):
    """A new pipeline object over the same modules (weights shared), with `replace`d parts
    (e.g. a fresh `scheduler`); its own flags and state, so swapping a part of it leaves `pipe`
    as it is."""
    view = type(pipe)(
        **{**pipe.components, **replace},
        force_zeros_for_empty_prompt=pipe.config.force_zeros_for_empty_prompt,
        add_watermarker=pipe.watermark is not None,
    )
    view.set_progress_bar_config(disable=True)
    return view


def with_pcclip_slot(pipe, encoder: Encoder):
    """A view of `pipe` (`pipeline_view`) with `encoder`'s text tower, converted to transformers'
    CLIPTextModel on the slot's device and dtype, in the `text_encoder` slot; `pipe` keeps its own.
    Check the fit first (`slot_fit`)."""
    slot = pipe.text_encoder
    return pipeline_view(pipe, text_encoder=to_transformers(encoder).to(device=slot.device, dtype=slot.dtype))


def check_request(request: GenerationRequest) -> None:
    """Loud errors for what SDXL cannot do (the app's schemas check the same earlier)."""
    if not request.prompt.strip():
        raise ValueError("prompt is empty")
    if request.steps < 1:
        raise ValueError(f"steps must be at least 1, got {request.steps}")
    for name in ("width", "height"):
        value = getattr(request, name)
        if value < 8 or value % 8:
            raise ValueError(f"{name} must be a positive multiple of 8, got {value}")
    if request.guidance < 0:
        raise ValueError(f"guidance must be ≥ 0, got {request.guidance}")


def _part_stats(embeds: torch.Tensor, unedited: torch.Tensor, widths: dict[str, int]) -> dict[str, PartStats]:
    """Per-encoder statistics of (L, D) conditioning split along D."""
    out, start = {}, 0
    for name, width in widths.items():
        e = embeds[:, start:start + width].float()  # (L, Dk)
        u = unedited[:, start:start + width].float()  # (L, Dk)
        out[name] = PartStats(
            mean_token_norm=float(e.norm(dim=-1).mean()),
            mean_token_norm_unedited=float(u.norm(dim=-1).mean()),
            cosine_to_prompt=float(F.cosine_similarity(e, u, dim=-1).mean()),
        )
        start += width
    return out


def _name_of(module: torch.nn.Module | None) -> str:
    if module is None:
        return "none"
    path = getattr(getattr(module, "config", None), "_name_or_path", "") or ""
    return f"{type(module).__name__}{', ' + path if path else ''}"
