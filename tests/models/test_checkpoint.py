import json
import os
import stat

import pytest
import torch

from models import CheckpointError, apply_checkpoint, create_model, load_checkpoint, save_checkpoint
from models.towers import text_block_names, text_block_state


def trained_copy(encoder) -> dict[str, torch.Tensor]:
    """The text blocks of `encoder`, each moved a little: what a finetune would produce."""
    generator = torch.Generator().manual_seed(0)
    return {
        name: tensor + 0.01 * torch.randn(tensor.shape, generator=generator)
        for name, tensor in text_block_state(encoder.model).items()
    }


@pytest.fixture
def checkpoint_dir(tmp_path, encoder):
    tensors = trained_copy(encoder)
    save_checkpoint(
        tmp_path / "ckpt", tensors, base="tiny-base", base_fingerprint=encoder.fingerprint, training={"epochs": 1}
    )
    return tmp_path / "ckpt", tensors


def test_round_trip_is_bit_exact(checkpoint_dir):
    folder, tensors = checkpoint_dir
    loaded = load_checkpoint(folder)
    assert sorted(loaded.tensors) == sorted(tensors)
    for name, tensor in tensors.items():
        assert torch.equal(loaded.tensors[name], tensor)
    assert loaded.metadata["training"] == {"epochs": 1}
    assert loaded.base == "tiny-base"


def test_metadata_describes_the_checkpoint(checkpoint_dir):
    folder, tensors = checkpoint_dir
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["parameters"] == {name: list(t.shape) for name, t in tensors.items()}
    assert len(metadata["sha256"]) == 64
    assert metadata["dtype"] == "float32"


def test_a_checkpoint_of_another_base_is_refused(checkpoint_dir, encoder):
    folder, _ = checkpoint_dir
    model = create_model("tiny-base", device="cpu").model
    with pytest.raises(CheckpointError, match="trained on base 'tiny-base'"):
        apply_checkpoint(model, load_checkpoint(folder), base_fingerprint="0" * 64)


def test_a_corrupted_weights_file_is_refused(checkpoint_dir):
    folder, _ = checkpoint_dir
    weights = folder / "text_tower.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match metadata"):
        load_checkpoint(folder)


def test_a_folder_without_metadata_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not a pcclip checkpoint"):
        load_checkpoint(tmp_path)


def test_loading_a_checkpoint_changes_text_but_not_image_embeddings(checkpoint_dir, encoder):
    folder, tensors = checkpoint_dir
    finetuned = create_model(str(folder), device="cpu")
    assert finetuned.base == "tiny-base"
    assert finetuned.fingerprint != encoder.fingerprint
    parameters = dict(finetuned.model.named_parameters())
    for name in text_block_names(finetuned.model):
        assert torch.equal(parameters[name].detach(), tensors[name])
    from PIL import Image

    images = [Image.new("RGB", (40, 30), (200, 30, 30))]
    assert torch.equal(finetuned.encode_images(images), encoder.encode_images(images))
    texts = ["a small red circle"]
    assert not torch.allclose(finetuned.encode_texts(texts), encoder.encode_texts(texts))


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_checkpoint_files_get_the_permissions_of_a_new_file(tmp_path, encoder, umask):
    """Every file of a checkpoint is created like any new file (0666 less the umask). safetensors
    writes its own file 0600, which made the weights unreadable to a server under another user."""
    previous = os.umask(umask)
    try:
        folder = save_checkpoint(
            tmp_path / "ckpt", trained_copy(encoder), base="tiny-base", base_fingerprint=encoder.fingerprint,
            training={},
        )  # fmt: skip
    finally:
        os.umask(previous)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}
    assert modes == {name: 0o666 & ~umask for name in ("metadata.json", "text_tower.safetensors")}
