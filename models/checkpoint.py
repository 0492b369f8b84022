"""PC-CLIP checkpoint I/O: trained text-tower parameters + self-describing metadata.

A checkpoint is a folder:
  text_tower.safetensors   only the parameters finetuning changed (no pickle)
  metadata.json            format, base spec and fingerprint, parameter names and shapes,
                           dtype, training config, sha256 of the weights file

Loading is strict: the weights must hash to the recorded sha256, hold exactly the recorded
names, and fit the base model; a checkpoint trained on another base is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from common.files import file_sha256, fsync_dir, write_atomic

FORMAT = "pcclip-checkpoint"
VERSION = 1
WEIGHTS_FILE = "text_tower.safetensors"
METADATA_FILE = "metadata.json"
REQUIRED = {"base": str, "base_fingerprint": str, "parameters": dict, "sha256": str}  # metadata keys and types


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or does not fit the model it is applied to."""


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    metadata: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def base(self) -> str:
        return self.metadata["base"]

    @property
    def sha256(self) -> str:
        return self.metadata["sha256"]


def save_checkpoint(
    folder: Path,
    tensors: dict[str, torch.Tensor],
    *,
    base: str,
    base_fingerprint: str,
    training: dict[str, Any],
    dtype: torch.dtype | None = None,
) -> Path:
    """Write a checkpoint folder; each file is written to a temp name, fsynced, then renamed.

    The weights go first and the metadata (holding their sha256) last, so a run killed in
    between leaves a folder that `load_checkpoint` refuses, never one it misreads.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored = {
        name: (tensor.to(dtype) if dtype is not None else tensor).detach().cpu().contiguous()
        for name, tensor in sorted(tensors.items())
    }
    weights_path = folder / WEIGHTS_FILE
    write_atomic(weights_path, lambda tmp: save_file(stored, str(tmp)), sync_dir=False)
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "base": base,
        "base_fingerprint": base_fingerprint,
        "parameters": {name: list(tensor.shape) for name, tensor in stored.items()},
        "dtype": str(next(iter(stored.values())).dtype).removeprefix("torch.") if stored else None,
        "training": training,
        "sha256": file_sha256(weights_path),
    }
    text = json.dumps(metadata, indent=2, sort_keys=True)
    write_atomic(folder / METADATA_FILE, text.encode(), sync_dir=False)
    fsync_dir(folder)
    return folder


def read_metadata(folder: Path) -> dict[str, Any]:
    path = Path(folder) / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise CheckpointError(f"{folder}: no {METADATA_FILE}; not a pcclip checkpoint") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: corrupt metadata ({error}); restore the checkpoint or re-export it") from error
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: corrupt metadata (a JSON {type(metadata).__name__}, not an object)")
    if metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: format {metadata.get('format')!r} v{metadata.get('version')!r}; "
            f"this pcclip reads {FORMAT!r} v{VERSION}"
        )
    wrong = [key for key, kind in REQUIRED.items() if not isinstance(metadata.get(key), kind)]
    if wrong:
        raise CheckpointError(f"{path}: corrupt metadata (missing or malformed: {', '.join(wrong)})")
    return metadata


def load_checkpoint(folder: Path) -> Checkpoint:
    """Read and verify a checkpoint folder (hash and parameter names)."""
    folder = Path(folder)
    metadata = read_metadata(folder)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{folder}: {WEIGHTS_FILE} is missing")
    actual = file_sha256(weights_path)
    if actual != metadata["sha256"]:
        raise CheckpointError(
            f"{weights_path}: sha256 {actual[:12]}… does not match metadata {metadata['sha256'][:12]}…; "
            "the file is corrupt or was replaced; restore the checkpoint or re-export it"
        )
    tensors = load_file(str(weights_path))
    if sorted(tensors) != sorted(metadata["parameters"]):
        raise CheckpointError(f"{weights_path}: parameter names differ from {METADATA_FILE}")
    return Checkpoint(folder=folder, metadata=metadata, tensors=tensors)


def apply_checkpoint(model: torch.nn.Module, checkpoint: Checkpoint, *, base_fingerprint: str) -> None:
    """Copy a checkpoint's parameters into `model` (in place), refusing any mismatch."""
    if checkpoint.metadata["base_fingerprint"] != base_fingerprint:
        raise CheckpointError(
            f"{checkpoint.folder} was trained on base {checkpoint.base!r} with fingerprint "
            f"{checkpoint.metadata['base_fingerprint'][:12]}…, but the base model built here has "
            f"fingerprint {base_fingerprint[:12]}…; load it with the base it was trained on"
        )
    state = model.state_dict()
    for name, tensor in checkpoint.tensors.items():
        if name not in state:
            raise CheckpointError(f"{checkpoint.folder}: parameter {name!r} does not exist in base {checkpoint.base!r}")
        if state[name].shape != tensor.shape:
            raise CheckpointError(
                f"{checkpoint.folder}: parameter {name!r} has shape {tuple(tensor.shape)}, "
                f"base {checkpoint.base!r} expects {tuple(state[name].shape)}"
            )
    with torch.no_grad():
        for name, tensor in checkpoint.tensors.items():
            state[name].copy_(tensor.to(state[name].dtype))

