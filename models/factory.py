"""`create_model(spec)`: the one way to turn a model spec into a ready `Encoder`."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch
from open_clip.transform import image_transform
from safetensors.torch import load_file

from common.files import file_sha256
from models import tiny
from models.checkpoint import apply_checkpoint, load_checkpoint
from models.encoder import Encoder, resolve_device, resolve_precision
from models.fingerprint import combine
from models.spec import VALID_FORMS, ModelSpec, SpecError, parse_spec
from models.towers import text_block_names

log = logging.getLogger(__name__)

RANDOM_SEED = 0  # `openclip:ARCH/random` is reproducible: same spec, same weights


def create_model(spec: str | ModelSpec, *, device: str | torch.device = "auto", precision: str = "auto") -> Encoder:
    """Build the model a spec names, on `device` ("auto" → CUDA when present), in eval mode."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    target = resolve_device(device)
    dtype = resolve_precision(target, precision)
    encoder = _build_on_cpu(parsed)
    encoder.model.to(device=target, dtype=dtype).eval()
    return replace(encoder, device=target, dtype=dtype)


def _build_on_cpu(spec: ModelSpec) -> Encoder:
    if spec.kind == "embedded":
        return _build_tiny() if spec.name == "tiny" else _build_tiny_base()
    if spec.kind == "openclip":
        return _build_openclip(spec)
    if spec.path is None:
        raise SpecError(f"a checkpoint spec needs the path of its folder; expected one of: {VALID_FORMS}")
    return _build_checkpoint(spec.path)


def _build_tiny_base() -> Encoder:
    folder = tiny.TINY_BASE_DIR
    weights = folder / tiny.IMAGE_TOWER_FILE
    if not weights.is_file():
        raise SpecError(f"tiny-base weights are missing ({weights}); rebuild them with `pcclip train-base`")
    config, weights_sha256 = _verified_base(folder, weights)
    model = tiny.build_tiny_clip(config)
    state = load_file(str(weights))
    missing = set(tiny.image_tower_state(model)) - set(state)
    if missing:
        raise SpecError(f"{weights} lacks {len(missing)} image-tower parameters, e.g. {sorted(missing)[0]}")
    model.load_state_dict(state, strict=False)
    text_weights = tiny.minilm_dir() / "model.safetensors"
    fingerprint = combine("tiny-base", weights_sha256, file_sha256(text_weights))
    image_fingerprint = combine("tiny-base image tower", weights_sha256)
    return tiny_encoder(model, config, spec="tiny-base", fingerprint=fingerprint, image_fingerprint=image_fingerprint)


def _verified_base(folder: Path, weights: Path) -> tuple[dict, str]:
    """tiny-base's config, and the sha256 of its weights, which must be the one config.json
    records: a truncated or bit-flipped weights file would otherwise load as garbage."""
    config_path = folder / tiny.CONFIG_FILE
    reinstall = "reinstall pcclip, or rebuild the weights with `pcclip train-base`"
    try:
        config = tiny.read_config(folder)
    except FileNotFoundError:
        raise SpecError(f"tiny-base config is missing ({config_path}); {reinstall}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise SpecError(f"{config_path}: corrupt config ({error}); {reinstall}") from None
    expected = config.get(tiny.WEIGHTS_SHA256) if isinstance(config, dict) else None
    if not isinstance(expected, str):
        raise SpecError(f"{config_path} records no {tiny.WEIGHTS_SHA256} to verify {weights.name}; {reinstall}")
    actual = file_sha256(weights)
    if actual != expected:
        raise SpecError(
            f"{weights}: sha256 {actual[:12]}… does not match {config_path.name} ({expected[:12]}…); "
            f"the weights file is corrupt or was replaced; {reinstall}"
        )
    return config, actual


def _build_tiny() -> Encoder:
    """`tiny` is a PC-CLIP checkpoint of `tiny-base`, shipped in `models/weights/tiny/`."""
    if not (tiny.TINY_DIR / "metadata.json").is_file():
        raise SpecError(f"tiny weights are missing ({tiny.TINY_DIR}); use tiny-base, or reinstall pcclip")
    return _build_checkpoint(tiny.TINY_DIR, spec="tiny")


def tiny_encoder(model, config: dict, *, spec: str, fingerprint: str, image_fingerprint: str = "") -> Encoder:
    """Wrap a tiny CLIP with its transform and tokenizer (also used by `train-base`)."""
    from open_clip.tokenizer import HFTokenizer

    resolved = tiny.resolve_config(config)
    text_cfg = resolved["text_cfg"]
    preprocess = image_transform(resolved["vision_cfg"]["image_size"], is_train=False)
    tokenizer = HFTokenizer(text_cfg["hf_tokenizer_name"], context_length=text_cfg["context_length"])
    return Encoder(
        model=model, preprocess=preprocess, tokenizer=tokenizer, spec=spec, fingerprint=fingerprint,
        device=torch.device("cpu"), dtype=torch.float32, base=spec, image_fingerprint=image_fingerprint,
    )


def _build_openclip(spec: ModelSpec) -> Encoder:
    import open_clip

    random = spec.pretrained == "random"
    with torch.random.fork_rng(devices=[]):  # built on the CPU; the caller's RNG stream stays as it was
        if random:
            torch.manual_seed(RANDOM_SEED)
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.arch, pretrained=None if random else spec.pretrained, pretrained_text=False
        )
    tokenizer = open_clip.get_tokenizer(spec.arch)
    notes = ["random weights: answers are meaningless; for benchmarks only"] if random else []
    return Encoder(
        model=model, preprocess=preprocess, tokenizer=tokenizer, spec=str(spec), fingerprint=combine(str(spec)),
        device=torch.device("cpu"), dtype=torch.float32, base=str(spec), notes=notes,
    )


def _build_checkpoint(folder: Path, *, spec: str | None = None) -> Encoder:
    """The checkpoint's base with its trained parameters applied, named `spec` (default: the folder)."""
    checkpoint = load_checkpoint(folder)
    base = _build_on_cpu(parse_spec(checkpoint.base))
    apply_checkpoint(base.model, checkpoint, base_fingerprint=base.fingerprint)
    text_only = set(checkpoint.tensors) <= set(text_block_names(base.model))
    fingerprint = combine(base.fingerprint, checkpoint.sha256)
    return replace(
        base,
        spec=spec or str(Path(folder)),
        fingerprint=fingerprint,
        # PC-CLIP trains the text tower only: the image tower, and so its embeddings, stay the base's
        image_fingerprint=base.image_identity if text_only else fingerprint,
        base=checkpoint.base,
    )
