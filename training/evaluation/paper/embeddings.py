"""Image and text embeddings for the paper suite: batched, autocast on CUDA, images cached.

Images are cached by content hash under a key made of the image tower's identity and the
precision (`Encoder.image_identity`: a PC-CLIP checkpoint shares its base's), so a rerun, or the
baseline of a model that only retrained its text tower, encodes no image twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from models import create_model
from models.encoder import Encoder
from models.fingerprint import combine
from training.embedding_cache import EmbeddingCache
from training.evaluation.paper.datasets import LabeledImages

AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}
PRECISIONS = ("auto", "fp32", *AUTOCAST)


def effective_precision(device: torch.device, precision: str) -> str:
    """"auto" → fp16 on CUDA, fp32 on CPU; autocast precisions apply on CUDA only."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if device.type != "cuda":
        return "fp32"
    return "fp16" if precision == "auto" else precision


class Embedder:
    """One model's embeddings: images through the cache, texts in batches, both under autocast."""

    def __init__(self, spec: str, *, device: str, precision: str, cache_dir: Path, batch_size: int,
                 caches: dict[str, EmbeddingCache] | None = None):
        """`caches`, shared by the embedders of one run, gives models with one image tower (a PC-CLIP
        checkpoint and its base) one cache, so an image is encoded once per run, not once per model."""
        # weights stay fp32; autocast runs the matmuls in fp16/bf16 (open_clip's "amp" evaluation)
        self.encoder: Encoder = create_model(spec, device=device, precision="fp32")
        self.precision = effective_precision(self.encoder.device, precision)
        self.batch_size = batch_size
        key = combine("paper images", self.encoder.image_identity, self.precision)
        caches = {} if caches is None else caches
        if key not in caches:
            caches[key] = EmbeddingCache(cache_dir, self.encoder, batch_size=batch_size, key=key)
        self.cache = caches[key]

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision in AUTOCAST:
            with torch.autocast("cuda", dtype=AUTOCAST[self.precision]):
                yield
        else:
            yield

    def images(self, data: LabeledImages, positions: Sequence[int] | None = None) -> torch.Tensor:
        """Embeddings of `data`'s images at `positions` (all by default).  -> (N, D) float32, unit norm"""
        positions = list(range(len(data))) if positions is None else list(positions)
        keys = [data.key(i) for i in positions]
        with self._autocast():
            return self.cache.embed_keyed(keys, lambda chosen: [data.open(positions[i]) for i in chosen])

    def texts(self, texts: Sequence[str]) -> torch.Tensor:
        """-> (T, D) float32, unit norm"""
        with self._autocast():
            return self.encoder.encode_texts(list(texts), batch_size=self.batch_size)

    def info(self) -> dict[str, str]:
        return {"spec": self.encoder.spec, "fingerprint": self.encoder.fingerprint,
                "image_identity": self.encoder.image_identity, "precision": self.precision,
                "device": str(self.encoder.device)}
