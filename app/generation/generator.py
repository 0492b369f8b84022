"""The generator: SDXL loaded in the background, its bridge and the job manager.

Its slot is "unavailable" without `PCCLIP_SDXL_MODEL`, else "loading" → "ready" | "failed". The
pipeline loads at once, beside the model; the bridge is built once the served model has
settled, so that a fitting PC-CLIP text tower can take SDXL's `text_encoder` slot; a model that
does not fit (or failed to load) leaves the pipeline's own encoders in place, and the bridge
says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.engine import Engine
from app.generation.jobs import JobManager
from app.settings import Settings
from app.slot import Slot
from models.generation.pipeline import SDXLBridge, load_pipeline

log = logging.getLogger(__name__)

PipelineLoader = Callable[[Settings], Any]
UNSET_REASON = (
    "generation is unavailable: no SDXL weights are configured; set PCCLIP_SDXL_MODEL "
    "(or `pcclip serve --sdxl-model`) to a local SDXL folder or a hub id"
)


def load_sdxl(settings: Settings):
    """The default pipeline loader: `settings.sdxl_model` on the configured device."""
    assert settings.sdxl_model is not None
    return load_pipeline(settings.sdxl_model, device=settings.device)


@dataclass
class Generator:
    bridge: SDXLBridge
    jobs: JobManager

    def close(self) -> None:
        self.jobs.close()


def load_generator(settings: Settings, loader: PipelineLoader, model: Slot[Engine]) -> Generator:
    """Load the pipeline, wait for the model to settle, build the bridge and the job manager."""
    log.info("loading SDXL pipeline %s", settings.sdxl_model)
    pipe = loader(settings)
    model.wait()  # the PC-CLIP model decides who fills the text_encoder slot
    engine = model.value
    bridge = SDXLBridge(pipe, engine.encoder if engine is not None else None)
    jobs = JobManager(bridge.generate, queue_limit=settings.generation_queue_limit, ttl_s=settings.generation_ttl_s)
    log.info("generator: text_encoder is %s", bridge.encoders["text_encoder"])
    return Generator(bridge, jobs)


def generator_slot(settings: Settings, loader: PipelineLoader, model: Slot[Engine]) -> Slot[Generator]:
    """The generator's slot, loading in the background when SDXL weights are configured."""
    if settings.sdxl_model is None:
        return Slot.unavailable("generator", UNSET_REASON)
    slot: Slot[Generator] = Slot(
        "generator",
        loading=f"SDXL pipeline {settings.sdxl_model} is loading",
        failed=f"SDXL pipeline {settings.sdxl_model} failed to load",
    )
    slot.start(lambda: load_generator(settings, loader, model))
    return slot


def describe_generator(slot: Slot[Generator], settings: Settings) -> dict[str, Any]:
    """For `/info`: state, reason, and who fills which text-encoder slot."""
    described: dict[str, Any] = {"state": slot.state, "detail": slot.detail, "sdxl_model": settings.sdxl_model}
    generator = slot.value
    if generator is not None:
        described.update(generator.bridge.describe())
    return described
