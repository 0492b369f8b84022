"""The generator slot: loads SDXL in the background and owns the job manager.

States: "unavailable" (no `PCCLIP_SDXL_MODEL`), or "loading" → "ready" | "failed". The SDXL
bridge is built once the served model has settled, so that a fitting PC-CLIP text tower can
take SDXL's `text_encoder` slot; a model that does not fit (or failed to load) leaves the
pipeline's own encoders in place, and the bridge says why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from app.errors import NotReady, Unavailable
from app.generation.jobs import JobManager
from app.settings import Settings
from app.state import ModelSlot
from models.generation.pipeline import SDXLBridge, load_pipeline

log = logging.getLogger(__name__)

GeneratorState = Literal["unavailable", "loading", "ready", "failed"]
PipelineLoader = Callable[[Settings], Any]
UNSET_REASON = (
    "generation is unavailable: no SDXL weights are configured; set PCCLIP_SDXL_MODEL "
    "(or `pcclip serve --sdxl-model`) to a local SDXL folder or a hub id"
)


def load_sdxl(settings: Settings):
    """The default pipeline loader: `settings.sdxl_model` on the configured device."""
    assert settings.sdxl_model is not None
    return load_pipeline(settings.sdxl_model, device=settings.device)


class GeneratorSlot:
    def __init__(self, settings: Settings, model_slot: ModelSlot, loader: PipelineLoader = load_sdxl) -> None:
        self.settings = settings
        self._model_slot = model_slot
        self._loader = loader
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.state: GeneratorState = "unavailable" if settings.sdxl_model is None else "loading"
        self.error: str | None = None
        self.bridge: SDXLBridge | None = None
        self.manager: JobManager | None = None

    def start(self) -> None:
        if self.state == "loading":
            threading.Thread(target=self._load, name="pcclip-sdxl-loader", daemon=True).start()

    def _load(self) -> None:
        log.info("loading SDXL pipeline %s", self.settings.sdxl_model)
        try:
            pipe = self._loader(self.settings)
            while self._model_slot.state == "loading" and not self._closed.is_set():
                time.sleep(0.05)  # the PC-CLIP model decides who fills the text_encoder slot
            model = self._model_slot.model
            bridge = SDXLBridge(pipe, model.encoder if model is not None else None)
        except Exception as exc:  # noqa: BLE001 — reported by /ready and /generate
            log.exception("SDXL pipeline %s failed to load", self.settings.sdxl_model)
            with self._lock:
                self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            return
        settings = self.settings
        with self._lock:
            if self._closed.is_set():
                return
            self.bridge = bridge
            self.manager = JobManager(
                bridge.generate, queue_limit=settings.generation_queue_limit, ttl_s=settings.generation_ttl_s
            )
            self.state = "ready"
        log.info("generator ready: %s", bridge.encoders["text_encoder"])

    @property
    def detail(self) -> str | None:
        """Why generation is not served, or None."""
        if self.state == "unavailable":
            return UNSET_REASON
        if self.state == "loading":
            return f"SDXL pipeline {self.settings.sdxl_model} is loading"
        if self.state == "failed":
            return f"SDXL pipeline {self.settings.sdxl_model} failed to load: {self.error}"
        return None

    def require(self) -> JobManager:
        manager = self.manager
        if manager is None:
            raise (Unavailable if self.state == "unavailable" else NotReady)(self.detail or "generator not loaded")
        return manager

    def describe(self) -> dict[str, Any]:
        """For `/info`: state, reason, and who fills which text-encoder slot."""
        described: dict[str, Any] = {"state": self.state, "detail": self.detail, "sdxl_model": self.settings.sdxl_model}
        if self.bridge is not None:
            described.update(self.bridge.describe())
        return described

    @property
    def queue_depth(self) -> int:
        return self.manager.queue_depth if self.manager is not None else 0

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            manager = self.manager
        if manager is not None:
            manager.close()
