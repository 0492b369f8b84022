"""The resumable state of a finetune run: `torch.save`'s bytes (weights only) in a checksummed
file (`common.files`), so a damaged or foreign state is refused with what to do, never loaded as
garbage."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from common.files import ChecksumError, read_checksummed, write_checksummed

STATE_FILE = "training_state.pt"
STATE_MAGIC = b"PCSTATE1"  # names the checksum footer of a state file
# Settings a resumed run may change: more epochs, and how the result is exported.
RESUME_MAY_CHANGE = ("epochs", "wise_alpha", "export_dtype")


class ResumeError(ValueError):
    """The run in `--out` cannot be resumed (corrupt state, or other settings); says what to do."""


def write_state(path: Path, state: dict[str, Any]) -> None:
    write_checksummed(path, lambda f: torch.save(state, f), STATE_MAGIC)


def read_state(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state of the run in `path.parent`, verified against the run's `settings`
    (`asdict` of its config); None when there is none.

    Raises `ResumeError` when the file is damaged or the run had other settings.
    """
    if not path.is_file():
        return None
    try:
        data, _checked = read_checksummed(path.read_bytes(), STATE_MAGIC)
    except ChecksumError as error:
        raise _corrupt_state(path, str(error)) from None
    # unchecked: written before states carried a checksum; torch's own checks are all there is
    try:
        state = torch.load(io.BytesIO(data), weights_only=True)
        saved, asked = json.loads(state["config"]), json.loads(json.dumps(settings))
    except Exception as error:  # noqa: BLE001 — any failure to read it means the same to the user
        first_line = next(iter(str(error).splitlines()), "")[:200]
        raise _corrupt_state(path, f"{type(error).__name__}: {first_line}".rstrip(": ")) from None
    for free in RESUME_MAY_CHANGE:
        saved.pop(free, None), asked.pop(free, None)
    if saved != asked:
        changed = sorted(key for key in asked if saved.get(key) != asked[key])
        raise ResumeError(f"{path} belongs to a run with other settings ({', '.join(changed)}); use a new --out")
    return state


def _corrupt_state(path: Path, reason: str) -> ResumeError:
    return ResumeError(
        f"{path} is corrupt ({reason}), so the run cannot resume from it. Delete it to restart the run "
        f"from epoch 0 in {path.parent}, or give a new --out."
    )
