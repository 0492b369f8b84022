"""Recipe of the embedded base model `tiny-base` (`pcclip train-base`).

LiT-style: the MiniLM text tower is frozen, so every caption is embedded once up front; only
the small image tower (and the logit scale) learns, against those fixed text embeddings, with
the symmetric CLIP loss. Images are preprocessed once into a uint8 tensor with the model's
own eval transform, so a training step costs one image-tower forward and backward.

    data  → caption embeddings (frozen text tower) → pixel cache → train_one_epoch … → export
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from models import tiny
from models.encoder import Encoder
from models.factory import tiny_encoder
from models.images import to_rgb
from training.describers.attributes import NUMBER_WORDS
from training.looks import look_view
from training.sources.base import Sample, load_source
from training.sources.cpunks import TYPE_PHRASES
from training.sources.scenes import POSITION_PHRASES

TEXT_CHUNK = 1024  # captions per progress-bar step


@dataclass(frozen=True)
class BaseTrainConfig:
    seed: int = 0
    steps: int = 2500  # optimizer steps; ~20 minutes on 2 CPU cores
    batch_size: int = 256
    lr: float = 2e-3  # AdamW peak learning rate (cosine decay after warmup)
    warmup_steps: int = 150
    weight_decay: float = 0.05
    # how many samples each source contributes (None = all of its train split)
    source_limits: dict[str, int | None] = field(
        default_factory=lambda: {
            "scenes": 45000,
            "fashion-mnist": 20000,
            "cpunks": None,
            "photos": None,
            "clipart": None,
        }
    )
    # share of the pictures that also train in a look view (`training.looks`); the photos never
    # do, so the generalization suite's edits of photos stay unseen by the image tower
    look_fraction: float = 0.3


@dataclass
class TrainingData:
    pixels: torch.Tensor  # (N, 3, H, W) uint8, the eval transform before normalization
    view_images: torch.Tensor  # (V,) long, index into `pixels`; a view = one image with one caption
    view_captions: torch.Tensor  # (V,) long, index into `text_embeddings`
    text_embeddings: torch.Tensor  # (U, D) float32, unit norm, one row per unique caption
    counts: dict[str, int]  # samples per source, and "look views"


def caption_variants(sample: Sample, rng: random.Random) -> list[str]:
    """The sample's caption plus, where its attributes allow, one shorter true caption.

    Full scene captions state six facts at once; short ones ("a red star", "three squares")
    teach the image tower each fact on its own, the way zero-shot prompts ask for it.
    """
    facts: Mapping[str, Any] = sample.attributes  # the source's documented keys and value types
    if sample.source == "scenes":
        plural = facts["count"] > 1
        shape = f"{facts['shape']}s" if plural else facts["shape"]
        number = NUMBER_WORDS[facts["count"]]
        short = rng.choice([
            f"a photo of a {facts['color']} {facts['shape']}",
            f"a {facts['color']} shape",
            f"{facts['color']} shapes" if plural else f"a {facts['color']} object",
            f"{number} {shape}",
            f"{number} shapes" if plural else "one shape",
            f"a {facts['size']} {facts['shape']}",
            f"a {facts['shape']}",
            f"something {facts['color']} {POSITION_PHRASES[facts['position']]}",
        ])
        return [sample.caption, short]
    if sample.source == "cpunks":
        return [sample.caption, f"a pixel-art portrait of {TYPE_PHRASES[facts['type']]}"]
    if sample.source == "clipart":
        return [sample.caption, str(facts["phrase"])]
    return [sample.caption]


def training_views(
    samples: list[Sample], look_fraction: float, rng: random.Random
) -> list[tuple[Image.Image, list[str]]]:
    """Each sample's picture with its captions, then a look view for `look_fraction` of them (never photos)."""
    views = [(sample.image, caption_variants(sample, rng)) for sample in samples]
    views.extend(
        look_view(sample.image, sample.caption, rng)
        for sample in samples
        if sample.source != "photos" and rng.random() < look_fraction
    )
    return views


def build_data(encoder: Encoder, config: BaseTrainConfig) -> TrainingData:
    """Load every source's train split, embed its unique captions, cache its pixels."""
    samples: list[Sample] = []
    counts: dict[str, int] = {}
    for name, limit in tqdm(config.source_limits.items(), desc="loading sources", unit="source"):
        try:
            loaded = list(load_source(name, split="train", limit=limit, seed=config.seed))
        except FileNotFoundError as error:
            tqdm.write(f"skipping source {name}: {error}")
            continue
        counts[name] = len(loaded)
        samples.extend(loaded)
    if not samples:
        raise RuntimeError("no training data: every source was unavailable")
    pictures = training_views(samples, config.look_fraction, random.Random(config.seed))
    views = [(i, caption) for i, (_, captions) in enumerate(pictures) for caption in captions]
    captions = sorted({caption for _, caption in views})
    index = {caption: i for i, caption in enumerate(captions)}
    text_embeddings = torch.cat([
        encoder.encode_texts(captions[i:i + TEXT_CHUNK])
        for i in tqdm(range(0, len(captions), TEXT_CHUNK), desc="embedding captions", unit="chunk")
    ])
    to_uint8 = _pixel_transform(encoder)
    pixels = torch.stack([to_uint8(image) for image, _ in tqdm(pictures, desc="caching pixels", unit="img")])
    return TrainingData(
        pixels=pixels,
        view_images=torch.tensor([i for i, _ in views]),
        view_captions=torch.tensor([index[caption] for _, caption in views]),
        text_embeddings=text_embeddings,
        counts=counts | {"look views": len(pictures) - len(samples)},
    )


def _transform_steps(encoder: Encoder) -> list[Any]:
    """The steps of the tiny models' eval transform, a torchvision Compose ending in Normalize."""
    from torchvision.transforms import Compose

    if not isinstance(encoder.preprocess, Compose):
        raise TypeError(f"expected a torchvision Compose eval transform, got {type(encoder.preprocess).__name__}")
    return list(encoder.preprocess.transforms)


def _pixel_transform(encoder: Encoder):
    """The model's eval transform up to (not including) normalization, as uint8."""
    from torchvision.transforms import Compose

    before_normalize = Compose(_transform_steps(encoder)[:-1])

    def to_uint8(image) -> torch.Tensor:
        return (before_normalize(to_rgb(image)) * 255).round().to(torch.uint8)

    return to_uint8


def clip_loss(
    image_features: torch.Tensor, text_features: torch.Tensor, caption_ids: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE with soft targets: images sharing a caption are all positives.

    image_features (B, D) and text_features (B, D) normalized; caption_ids (B,).
    """
    logits = logit_scale.exp() * image_features @ text_features.T  # (B, B)
    same = (caption_ids[:, None] == caption_ids[None, :]).float()  # (B, B)
    targets = same / same.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def build_optimizer(model: torch.nn.Module, config: BaseTrainConfig):
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)

    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def train(encoder: Encoder, data: TrainingData, config: BaseTrainConfig) -> list[dict[str, float]]:
    """Train the image tower in place; returns the loss curve (one point per 50 steps)."""
    model = encoder.model
    model.train()
    model.text.eval()  # frozen tower: no dropout noise (its embeddings are precomputed anyway)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith("visual.") or name == "logit_scale"
    optimizer, scheduler = build_optimizer(model, config)
    normalize = _transform_steps(encoder)[-1]
    generator = torch.Generator().manual_seed(config.seed)
    n = len(data.view_images)
    curve: list[dict[str, float]] = []
    running = 0.0
    progress = tqdm(range(config.steps), desc="train-base", unit="step")
    for step in progress:
        batch = torch.randint(0, n, (config.batch_size,), generator=generator)
        pixels = normalize(data.pixels[data.view_images[batch]].float() / 255)
        caption_ids = data.view_captions[batch]
        image_features = F.normalize(model.encode_image(pixels), dim=-1)
        text_features = data.text_embeddings[caption_ids]
        loss = clip_loss(image_features, text_features, caption_ids, model.logit_scale)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        running = loss.item() if step == 0 else 0.98 * running + 0.02 * loss.item()
        progress.set_postfix(loss=f"{running:.3f}", scale=f"{model.logit_scale.exp().item():.1f}")
        if (step + 1) % 50 == 0 or step + 1 == config.steps:
            curve.append({"step": step + 1, "loss": running})
    model.eval()
    return curve


def export(encoder: Encoder, out: Path, report: dict[str, Any]) -> Path:
    """Write config.json (architecture + how it was trained) and image_tower.safetensors."""
    out.mkdir(parents=True, exist_ok=True)
    tiny.save_image_tower(encoder.model, out)  # config.json records the weights' sha256
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return out


def run(out: Path, config: BaseTrainConfig, evaluate=None) -> dict[str, Any]:
    """The whole recipe: seed → data → train → (evaluate) → export. Returns the report."""
    started = time.monotonic()
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    encoder = tiny_encoder(tiny.build_tiny_clip(), tiny.TINY_MODEL_CONFIG, spec="tiny-base", fingerprint="training")
    data = build_data(encoder, config)
    curve = train(encoder, data, config)
    report: dict[str, Any] = {
        "config": asdict(config),
        "samples": data.counts,
        "unique_captions": len(data.text_embeddings),
        "curve": curve,
        "train_seconds": round(time.monotonic() - started, 1),
    }
    if evaluate is not None:
        report["zero_shot"] = evaluate(encoder)
    export(encoder, out, report)
    return report


def summary(report: dict[str, Any]) -> str:
    parts = [f"{report['train_seconds'] / 60:.1f} min", f"final loss {report['curve'][-1]['loss']:.3f}"]
    for name, metrics in report.get("zero_shot", {}).items():
        parts.append(f"{name} {metrics['accuracy']:.2f} (chance {metrics['chance']:.2f})")
    return "; ".join(parts)


