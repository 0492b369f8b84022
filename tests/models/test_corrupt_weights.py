"""Damaged weights are refused with the file's name and what to do — never loaded as garbage.

Covers a finetuned checkpoint folder (weights + metadata.json) and the shipped tiny-base weights
(checked against the sha256 in their config.json), each on a copy in tmp_path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models import CheckpointError, SpecError, create_model, load_checkpoint, save_checkpoint, tiny
from models.checkpoint import METADATA_FILE, WEIGHTS_FILE


def flip_bit(path: Path, at: float = 0.6) -> None:
    """Flip one bit `at` of the way into the file (past any header: in tensor data)."""
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x04
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# fault name -> (file, damage, words the refusal must contain)
CHECKPOINT_FAULTS = {
    "weights truncated": (WEIGHTS_FILE, truncate, "does not match metadata"),
    "weights bit flip": (WEIGHTS_FILE, flip_bit, "does not match metadata"),
    "weights missing": (WEIGHTS_FILE, Path.unlink, "is missing"),
    "metadata garbage": (METADATA_FILE, lambda p: p.write_bytes(b"\x00\xff{not json"), "corrupt metadata"),
    "metadata truncated": (METADATA_FILE, truncate, "corrupt metadata"),
    "metadata not an object": (METADATA_FILE, lambda p: p.write_text("[1, 2]"), "corrupt metadata"),
    "metadata without sha256": (
        METADATA_FILE,
        lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "sha256"})),
        "missing or malformed: sha256",
    ),
    "metadata missing": (METADATA_FILE, Path.unlink, "not a pcclip checkpoint"),
}


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    tensors = {"text.transformer.layer.0.weight": torch.randn(64, 64), "text.transformer.layer.0.bias": torch.randn(64)}
    return save_checkpoint(tmp_path / "ckpt", tensors, base="tiny-base", base_fingerprint="f" * 64, training={})


def test_an_intact_checkpoint_loads(checkpoint):
    assert sorted(load_checkpoint(checkpoint).tensors) == sorted(
        json.loads((checkpoint / METADATA_FILE).read_text())["parameters"]
    )
    assert not list(checkpoint.glob(".*.tmp"))  # no temp files left behind


@pytest.mark.parametrize("fault", CHECKPOINT_FAULTS)
def test_a_damaged_checkpoint_is_refused_naming_the_file(checkpoint, fault):
    name, damage, words = CHECKPOINT_FAULTS[fault]
    damage(checkpoint / name)
    with pytest.raises(CheckpointError, match=words) as refused:
        load_checkpoint(checkpoint)
    assert str(checkpoint) in str(refused.value)
    # The factory refuses it too (a folder without metadata is not even a model spec), before
    # building any base model.
    with pytest.raises((CheckpointError, SpecError)) as refused:
        create_model(str(checkpoint), device="cpu")
    assert str(checkpoint) in str(refused.value)


@pytest.fixture
def base_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped tiny-base folder, loaded by `create_model("tiny-base")` instead."""
    folder = tmp_path / "tiny-base"
    shutil.copytree(tiny.TINY_BASE_DIR, folder)
    monkeypatch.setattr(tiny, "TINY_BASE_DIR", folder)
    return folder


def test_the_shipped_config_records_the_weights_hash():
    assert len(tiny.read_config(tiny.TINY_BASE_DIR)[tiny.WEIGHTS_SHA256]) == 64


def test_an_intact_copy_of_the_base_loads_as_the_original(base_copy, encoder):
    assert create_model("tiny-base", device="cpu").fingerprint == encoder.fingerprint


def test_train_base_export_records_the_hash_it_is_verified_against(tmp_path, monkeypatch, encoder):
    """`pcclip train-base` writes through `tiny.save_image_tower`: its output loads, verified."""
    folder = tmp_path / "exported"
    tiny.save_image_tower(encoder.model, folder)
    monkeypatch.setattr(tiny, "TINY_BASE_DIR", folder)
    loaded = create_model("tiny-base", device="cpu")
    pixels = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded.model.encode_image(pixels), encoder.model.encode_image(pixels))
    flip_bit(folder / tiny.IMAGE_TOWER_FILE)
    with pytest.raises(SpecError, match="does not match config.json"):
        create_model("tiny-base", device="cpu")


def test_safetensors_alone_loads_a_bit_flipped_file(base_copy):
    """Why the sha256 check exists: a flipped bit in tensor data loads silently, as other numbers."""
    weights = base_copy / tiny.IMAGE_TOWER_FILE
    original = {name: tensor.clone() for name, tensor in load_file(str(weights)).items()}
    flip_bit(weights)
    flipped = load_file(str(weights))
    assert any(not torch.equal(original[name], flipped[name]) for name in original)


def _config_without_hash(path: Path) -> None:
    config = json.loads(path.read_text())
    del config[tiny.WEIGHTS_SHA256]
    path.write_text(json.dumps(config))


BASE_FAULTS = {
    "weights bit flip": (tiny.IMAGE_TOWER_FILE, flip_bit, "does not match config.json"),
    "weights header bit flip": (tiny.IMAGE_TOWER_FILE, lambda p: flip_bit(p, at=0.0001), "does not match"),
    "weights truncated": (tiny.IMAGE_TOWER_FILE, truncate, "does not match config.json"),
    "weights missing": (tiny.IMAGE_TOWER_FILE, Path.unlink, "weights are missing"),
    "config garbage": (tiny.CONFIG_FILE, lambda p: p.write_bytes(b"{\x00garbage"), "corrupt config"),
    "config without hash": (tiny.CONFIG_FILE, _config_without_hash, "records no image_tower_sha256"),
    "config missing": (tiny.CONFIG_FILE, Path.unlink, "config is missing"),
}


@pytest.mark.parametrize("spec", ["tiny-base", "tiny"])
@pytest.mark.parametrize("fault", BASE_FAULTS)
def test_damaged_base_weights_are_refused_naming_the_file(base_copy, fault, spec):
    name, damage, words = BASE_FAULTS[fault]
    damage(base_copy / name)
    with pytest.raises(SpecError, match=words) as refused:
        create_model(spec, device="cpu")  # `tiny` is a checkpoint over tiny-base: it needs the base too
    assert str(base_copy) in str(refused.value)
    assert "reinstall pcclip" in str(refused.value) or "train-base" in str(refused.value)
