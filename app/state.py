"""What the lifespan puts into app state: the model slot (background loading) and its parts."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from app.batcher import Kind, MicroBatcher
from app.errors import NotReady
from app.settings import Settings
from models import Encoder, create_model

log = logging.getLogger(__name__)

Loader = Callable[[Settings], Encoder]
State = Literal["loading", "ready", "failed"]


def load_encoder(settings: Settings) -> Encoder:
    """The default loader: the model named by the settings, on the configured device."""
    if settings.torch_threads is not None:
        torch.set_num_threads(settings.torch_threads)
    return create_model(settings.model, device=settings.device)


class TextCache:
    """LRU of text embeddings keyed by (model fingerprint, text). Used from the event loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, fingerprint: str, text: str) -> torch.Tensor | None:
        vector = self._entries.get((fingerprint, text))
        if vector is None:
            self.misses += 1
            return None
        self._entries.move_to_end((fingerprint, text))
        self.hits += 1
        return vector

    def put(self, fingerprint: str, text: str, vector: torch.Tensor) -> None:
        if self.size <= 0:
            return
        self._entries[(fingerprint, text)] = vector
        self._entries.move_to_end((fingerprint, text))
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class LoadedModel:
    """A model ready to serve: the encoder, the batcher that owns it, its text cache."""

    encoder: Encoder
    batcher: MicroBatcher
    texts: TextCache
    loaded_at: float = field(default_factory=time.time)  # Unix time

    @property
    def fingerprint(self) -> str:
        return self.encoder.fingerprint

    async def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, D) embeddings of `texts`, through the cache; only misses reach the batcher."""
        found: dict[str, torch.Tensor] = {}
        missing: list[str] = []
        for text in dict.fromkeys(texts):
            vector = self.texts.get(self.fingerprint, text)
            if vector is None:
                missing.append(text)
            else:
                found[text] = vector
        if missing:
            out = await self.batcher.encode_texts(missing)  # (M, D)
            for text, vector in zip(missing, out, strict=True):
                vector = vector.clone()
                self.texts.put(self.fingerprint, text, vector)
                found[text] = vector
        return torch.stack([found[text] for text in texts])

    async def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) → (N, D)."""
        return await self.batcher.encode_pixels(pixels)


class ModelSlot:
    """Holds the served model; loads it in a background thread so the server answers at once.

    States: "loading" → "ready", or "loading" → "failed" (with the reason).
    """

    def __init__(
        self,
        settings: Settings,
        loader: Loader = load_encoder,
        on_batch: Callable[[Kind, int, float], None] | None = None,
        on_ready: Callable[[Encoder], None] | None = None,
    ) -> None:
        self.settings = settings
        self._loader = loader
        self._on_batch = on_batch
        self._on_ready = on_ready  # runs in the loading thread once the model serves (opens the index)
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.state: State = "loading"
        self.error: str | None = None
        self.model: LoadedModel | None = None

    def start(self, encoder: Encoder | None = None) -> None:
        """Install `encoder` now, or start loading the configured model in the background."""
        if encoder is not None:
            self._install(encoder)
            return
        self._thread = threading.Thread(target=self._load, name="pcclip-model-loader", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        log.info("loading model %s on %s", self.settings.model, self.settings.device)
        try:
            encoder = self._loader(self.settings)
        except Exception as exc:  # noqa: BLE001 — reported by /ready, the server keeps running
            log.exception("model %s failed to load", self.settings.model)
            with self._lock:
                self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            return
        self._install(encoder)

    def _install(self, encoder: Encoder) -> None:
        settings = self.settings
        with self._lock:
            if self._closed:
                return
            batcher = MicroBatcher(
                encoder,
                max_batch=settings.max_batch,
                max_wait_ms=settings.max_wait_ms,
                queue_limit=settings.queue_limit,
                pixels_in_flight=settings.max_pixels_in_flight,
                on_batch=self._on_batch,
            )
            self.model = LoadedModel(encoder, batcher, TextCache(settings.text_cache_size))
            self.state = "ready"
        log.info("model ready: %s (%s on %s)", encoder.spec, encoder.fingerprint[:12], encoder.device)
        if self._on_ready is not None:
            self._on_ready(encoder)

    @property
    def detail(self) -> str | None:
        """Why the model is not ready, or None."""
        if self.state == "loading":
            return f"model {self.settings.model} is loading"
        if self.state == "failed":
            return f"model {self.settings.model} failed to load: {self.error}"
        return None

    def require(self) -> LoadedModel:
        model = self.model
        if model is None:
            raise NotReady(self.detail or "model not loaded")
        return model

    @property
    def queue_depth(self) -> int:
        return self.model.batcher.queue_depth if self.model is not None else 0

    def close(self) -> None:
        with self._lock:
            self._closed = True
            model = self.model
        if model is not None:
            model.batcher.close()
