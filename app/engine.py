"""The inference engine: the one object services encode through.

It owns the loaded model, the micro-batcher that runs it, the text-embedding cache, image
loading and admission (the batcher's bounded queue and the decoded-pixel budget). Services call
`encode_texts`, `encode_images` and `read_image_bytes`; nothing outside reaches the batcher.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from app.batcher import Kind, MicroBatcher
from app.images import ImageLoader, Source
from app.settings import Settings
from app.slot import Slot
from models import Encoder, create_model

log = logging.getLogger(__name__)

MALLOC_REUSE_BYTES = 32 * 2**20  # glibc's highest mmap threshold (64-bit): a larger block is mapped anew at each use
CPU_IMAGE_CHUNK = 32  # images per forward call on the CPU when the image tower's activations are not known

Loader = Callable[[Settings], Encoder]
BatchObserver = Callable[[Kind, int, float], None]


def load_encoder(settings: Settings) -> Encoder:
    """The default loader: the model named by the settings, on the configured device, its towers
    traced where `settings.trace_towers` (see `models.traced`).

    Its objects are then frozen out of the cyclic garbage collector (`gc.freeze`): a model is
    hundreds of thousands of long-lived objects that each full collection walked, a pause of
    ~200 ms that set the p99 of a loaded server (30 ms with them frozen: `bench/serve.py`)."""
    if settings.torch_threads is not None:
        torch.set_num_threads(settings.torch_threads)
    encoder = create_model(settings.model, device=settings.device)
    if settings.trace_towers:
        log.info("traced towers: %s (PCCLIP_TRACE_TOWERS)", ", ".join(encoder.trace_towers()) or "none")
    gc.collect()
    gc.freeze()
    return encoder


def cpu_image_chunk(encoder: Encoder) -> int:
    """Images per forward call on the CPU: the largest power of two whose largest activation fits
    within glibc's mmap threshold, so that malloc reuses each layer's memory across layers and
    passes instead of mapping it and faulting it in anew (ViT-B-16 on 2 cores: 141–146 ms per image
    in calls of 8, 150 in calls of 4, 171–175 in calls of 32 with ~30,000 page faults per image).
    ViT-B-32: 32; ViT-B-16: 8; ViT-L-14: 4."""
    per_image = encoder.image_activation_bytes()
    if not per_image:
        return CPU_IMAGE_CHUNK
    fitting = max(1, MALLOC_REUSE_BYTES // per_image)
    return 1 << (fitting.bit_length() - 1)


class TextCache:
    """LRU of text embeddings, (D,) float32 arrays keyed by (model fingerprint, text). Used from the event loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, fingerprint: str, text: str) -> np.ndarray | None:
        vector = self._entries.get((fingerprint, text))
        if vector is None:
            self.misses += 1
            return None
        self._entries.move_to_end((fingerprint, text))
        self.hits += 1
        return vector

    def put(self, fingerprint: str, text: str, vector: np.ndarray) -> None:
        if self.size <= 0:
            return
        self._entries[(fingerprint, text)] = vector
        self._entries.move_to_end((fingerprint, text))
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class EngineHealth:
    """Counters for /metrics and tests, read at one moment."""

    queue_depth: int  # items waiting for the model
    pixels_in_flight: int  # decoded image pixels held by requests now decoding
    batches: int  # forward passes run
    largest_batch: int  # items in the largest of them
    cached_texts: int
    cache_hits: int
    cache_misses: int


class Engine:
    """Named inputs in — (field name for messages, input) pairs — normalized (N, D) vectors out."""

    def __init__(
        self, encoder: Encoder, settings: Settings, images: ImageLoader, on_batch: BatchObserver | None = None
    ) -> None:
        self._encoder = encoder
        self._images = images
        self._texts = TextCache(settings.text_cache_size)
        self._batcher = MicroBatcher(
            encoder,
            max_batch=settings.max_batch,
            image_chunk=settings.image_chunk or (cpu_image_chunk(encoder) if encoder.device.type == "cpu" else None),
            max_wait_ms=settings.max_wait_ms,
            queue_limit=settings.queue_limit,
            pixels_in_flight=settings.max_pixels_in_flight,
            patience=settings.batch_patience,
            on_batch=on_batch,
        )
        log.info("images run in forward calls of up to %d (PCCLIP_IMAGE_CHUNK)", self._batcher.image_chunk)
        self.loaded_at = time.time()  # Unix time

    # --- the model ---------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        return self._encoder.fingerprint

    @property
    def spec(self) -> str:
        return self._encoder.spec

    @property
    def embed_dim(self) -> int:
        return self._encoder.embed_dim

    @property
    def encoder(self) -> Encoder:
        """The loaded model itself, for the SDXL bridge that converts its text tower; encoding
        always goes through `encode_texts` and `encode_images`."""
        return self._encoder

    def describe(self) -> dict[str, Any]:
        """For /info: spec, fingerprint, embed_dim, device, dtype, notes."""
        return self._encoder.info()

    def health(self) -> EngineHealth:
        stats = self._batcher.stats
        return EngineHealth(
            queue_depth=self._batcher.queue_depth,
            pixels_in_flight=self._batcher.pixels.held,
            batches=stats.batches,
            largest_batch=stats.largest_batch,
            cached_texts=len(self._texts),
            cache_hits=self._texts.hits,
            cache_misses=self._texts.misses,
        )

    # --- encoding ----------------------------------------------------------------------------

    async def encode_texts(self, named_texts: Sequence[tuple[str, str]]) -> torch.Tensor:
        """Embed texts (checked by the schemas), through the cache; only misses reach the batcher.  -> (N, D)"""
        texts = [text for _, text in named_texts]
        found: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for text in dict.fromkeys(texts):
            vector = self._texts.get(self.fingerprint, text)
            if vector is None:
                missing.append(text)
            else:
                found[text] = vector
        if missing:
            out = (await self._batcher.encode_texts(missing)).numpy()  # (M, D)
            for text, vector in zip(missing, out, strict=True):
                vector = vector.copy()  # a row of its own: a cached view would keep the request's other rows alive
                self._texts.put(self.fingerprint, text, vector)
                found[text] = vector
        # numpy, not torch, on the event loop (see app/batcher.py)
        return torch.from_numpy(np.stack([found[text] for text in texts]))

    async def encode_images(self, named_sources: Sequence[tuple[str, Source]]) -> torch.Tensor:
        """Load, preprocess (threadpool) and embed images.  -> (N, D)

        Admitted first: when the queue is full, or the decoded pixels in flight would exceed
        their budget, the request is refused before any image is fetched or decoded."""
        with self._batcher.admit(len(named_sources)):
            pixels = await self._images.load(  # (N, 3, H, W)
                named_sources, self._encoder.pixels, self._batcher.pixels, self._encoder.input_side
            )
        return await self._batcher.encode_pixels(pixels)

    async def read_image_bytes(self, named_sources: Sequence[tuple[str, Source]]) -> list[bytes]:
        """The file bytes of image inputs (base64 decoded, URLs fetched where allowed), nothing decoded."""
        return await self._images.read_bytes(named_sources)

    def close(self) -> None:
        """Stop the batcher: queued jobs fail with `NotReady`, the running batch finishes."""
        self._batcher.close()


def engine_slot(
    settings: Settings,
    images: ImageLoader,
    *,
    encoder: Encoder | None = None,
    loader: Loader = load_encoder,
    on_batch: BatchObserver | None = None,
) -> Slot[Engine]:
    """The model's slot: ready now with `encoder`, or loading `settings.model` with `loader` in
    a background thread."""
    slot: Slot[Engine] = Slot(
        "model", loading=f"model {settings.model} is loading", failed=f"model {settings.model} failed to load"
    )

    def load(encoder: Encoder) -> Engine:
        log.info("model ready: %s (%s on %s)", encoder.spec, encoder.fingerprint[:12], encoder.device)
        return Engine(encoder, settings, images, on_batch)

    if encoder is not None:
        slot.install(load(encoder))
    else:
        log.info("loading model %s on %s", settings.model, settings.device)
        slot.start(lambda: load(loader(settings)))
    return slot
