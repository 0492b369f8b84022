"""One object that encodes images and texts with a loaded CLIP, normalized, in batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import torch
from PIL import Image

from models.geometry import normalize
from models.images import to_rgb
from models.preprocess import SplitTransform, split_transform
from models.traced import TEXT_PROBES, Forward, image_probes, traced
from models.trimmed_text import trimmed_text

if TYPE_CHECKING:
    from open_clip.model import CLIP, CustomTextCLIP

    # open_clip ships no types (mypy reads its classes as Any); the alias still says what is meant.
    ClipModel: TypeAlias = CLIP | CustomTextCLIP

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" → CUDA when present, else CPU; "cuda" without a GPU is an error, not a fallback."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; expected auto, cpu or cuda")
    return resolved


def resolve_precision(device: torch.device, precision: str = "auto") -> torch.dtype:
    """"auto" → fp16 on CUDA, fp32 on CPU (fp16 matmuls are slow or missing on CPU)."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected auto, {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


@dataclass
class Encoder:
    """A CLIP ready to encode. Outputs are float32 CPU tensors of unit norm.

    `model` is an open_clip CLIP whose `encode_image` / `encode_text` take preprocessed
    pixels and token ids; `preprocess` is the model's own eval transform and `tokenizer`
    its own tokenizer. Not thread-safe: serve it from one worker thread.
    """

    model: ClipModel
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[[Sequence[str]], torch.Tensor]
    spec: str
    fingerprint: str
    device: torch.device
    dtype: torch.dtype
    base: str = ""
    notes: list[str] = field(default_factory=list)
    image_fingerprint: str = ""  # identifies the image tower alone; "" = not known apart from `fingerprint`
    _split: SplitTransform | None = field(init=False, repr=False, default=None)
    _image_forward: Forward | None = field(init=False, repr=False, default=None)  # None: model.encode_image
    _trim: Forward = field(init=False, repr=False)
    _text_forward: Forward = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._split = split_transform(self.preprocess)
        self._trim, self._text_forward = trimmed_text(self.model)

    def trace_towers(self) -> list[str]:
        """Encode through TorchScript traces of the towers from now on, where they trace and match
        the eager towers (`models.traced`).  -> the towers traced ("image", "text")"""
        done = []
        side = self.input_side
        image = traced(self.model.visual, image_probes(side, self.device, self.dtype), "image tower") if side else None
        if image is not None:
            self._image_forward = image
            done.append("image")
        probes = [self._trim(self.tokenize(texts).to(self.device)) for texts in TEXT_PROBES]
        if text := traced(self._text_forward, probes, "text tower", owner=self.model):
            self._text_forward = text
            done.append("text")
        return done

    @property
    def image_identity(self) -> str:
        """What image embeddings depend on: equal for models that share their image tower (a
        PC-CLIP checkpoint and its base), so cached image embeddings carry over between them."""
        return self.image_fingerprint or self.fingerprint

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if _has_matrix(self.model, "text_projection") else int(
            self.model.visual.output_dim
        )

    @property
    def input_side(self) -> int | None:
        """The longest side of the image tower's input, in pixels; None when the tower does not say."""
        size = getattr(self.model.visual, "image_size", None)
        if isinstance(size, int):
            return size
        return max(size) if isinstance(size, (tuple, list)) and size else None

    @torch.inference_mode()
    def image_activation_bytes(self) -> int | None:
        """The largest tensor a layer of the image tower outputs for one image, in bytes (for a ViT,
        its MLP's hidden activation: tokens × 4 × width); None when the tower does not say its
        input side. Runs the eager tower once on a blank image."""
        side = self.input_side
        if not side:
            return None
        largest = 0

        def note(module: torch.nn.Module, inputs: Any, output: Any) -> None:
            nonlocal largest
            for tensor in output if isinstance(output, (tuple, list)) else (output,):
                if isinstance(tensor, torch.Tensor):
                    largest = max(largest, tensor.numel() * tensor.element_size())

        hooks = [module.register_forward_hook(note) for module in self.model.visual.modules()]
        try:
            self.model.visual(torch.zeros(1, 3, side, side, device=self.device, dtype=self.dtype))
        finally:
            for hook in hooks:
                hook.remove()
        return largest

    def info(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "base": self.base or self.spec,
            "fingerprint": self.fingerprint,
            "embed_dim": self.embed_dim,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "notes": list(self.notes),
        }

    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Preprocess images with the model's own transform.  -> (N, 3, H, W)

        uint8 levels where the transform splits (`models.preprocess`: normalized per batch by
        `encode_pixels`), else float32 as the transform gives them."""
        if self._split is not None:
            return self._split.levels(images)
        return torch.stack([self.preprocess(to_rgb(image)) for image in images])

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids with the model's own tokenizer.  -> (N, L) long"""
        return self.tokenizer(list(texts))

    @torch.inference_mode()
    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> torch.Tensor:
        """Encode PIL images.  -> (N, D) float32, unit norm"""
        parts = [
            self._finish(self._encode_image(self._model_input(self.pixels(chunk))))
            for chunk in _chunks(images, batch_size)
        ]
        return self._concat(parts)

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Encode pixels (N, 3, H, W) from `pixels` (uint8 or float32).  -> (N, D) float32, unit norm"""
        parts = [
            self._finish(self._encode_image(self._model_input(chunk))) for chunk in pixels.split(batch_size)
        ]
        return self._concat(parts)

    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        if self._image_forward is not None:
            return self._image_forward(pixels)
        return self.model.encode_image(pixels)

    def _model_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels on the model's device in its dtype; 8-bit levels are normalized there first."""
        if pixels.dtype != torch.uint8:
            return pixels.to(self.device, self.dtype)
        if self._split is None:
            raise ValueError("8-bit pixels need a transform that ends in ToTensor and Normalize")
        return self._split.normalize(pixels.to(self.device)).to(self.dtype)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Encode strings, each batch trimmed to its longest text.  -> (N, D) float32, unit norm"""
        parts = [
            self._finish(self._text_forward(self._trim(self.tokenize(chunk).to(self.device))))
            for chunk in _chunks(texts, batch_size)
        ]
        return self._concat(parts)

    def _finish(self, features: torch.Tensor) -> torch.Tensor:
        return normalize(features.float()).cpu()

    def _concat(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(parts) if parts else torch.empty(0, self.embed_dim)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _has_matrix(model: ClipModel, name: str) -> bool:
    value = getattr(model, name, None)
    return isinstance(value, torch.Tensor) and value.ndim == 2
