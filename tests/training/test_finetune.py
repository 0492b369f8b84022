"""Finetuning on a small real pairs file made from drawn scenes with exact differences."""

import json
from dataclasses import replace

import pytest
import torch

from models import create_model, load_checkpoint
from models.towers import text_block_names
from training import finetune
from training.describers.attributes import AttributeDescriber
from training.embedding_cache import EmbeddingCache
from training.pair_builder import build_pairs
from training.sources.base import load_source


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    samples = load_source("scenes", split="train", limit=40, seed=5)
    stats = build_pairs(samples, AttributeDescriber(seed=0), folder / "pairs.jsonl", budget=160, seed=0)
    assert stats.kept > 100
    return folder / "pairs.jsonl"


@pytest.fixture
def config(pairs_file):
    return finetune.FinetuneConfig(
        pairs=str(pairs_file), base="tiny-base", epochs=2, batch_size=32, lr=2e-4, val_fraction=0.2
    )


def test_with_a_warm_cache_the_image_tower_is_never_called(config, tmp_path, encoder):
    finetune.build_data(encoder, config, tmp_path)  # warms the cache
    cold_calls = []
    original = encoder.model.visual.forward
    encoder.model.visual.forward = lambda *args, **kwargs: cold_calls.append(1) or original(*args, **kwargs)
    try:
        warm_train, _ = finetune.build_data(encoder, config, tmp_path)
    finally:
        del encoder.model.visual.forward
    assert cold_calls == []
    assert len(warm_train) > 0


def test_cache_is_keyed_by_fingerprint_and_survives_reopening(tmp_path, encoder, pairs_file):
    images = sorted((pairs_file.parent / "images").glob("*.png"))[:5]
    first = EmbeddingCache(tmp_path, encoder).embed(images)
    reopened = EmbeddingCache(tmp_path, encoder)
    assert len(reopened) == 5
    assert torch.equal(reopened.embed(images), first)
    assert (tmp_path / encoder.fingerprint).is_dir()


def test_loss_falls_and_only_text_blocks_move(config, tmp_path):
    report = finetune.run(replace(config, epochs=3), tmp_path / "run", cache_dir=tmp_path / "cache", device="cpu")
    losses = [row["train_loss"] for row in report["history"] if "train_loss" in row]
    assert losses[-1] < losses[0]
    assert report["history"][-1]["val_loss"] < report["history"][0]["val_loss"]

    base = create_model("tiny-base", device="cpu")
    tuned = create_model(str(tmp_path / "run"), device="cpu")
    trainable = set(text_block_names(base.model))
    base_params = dict(base.model.named_parameters())
    moved = 0
    for name, parameter in tuned.model.named_parameters():
        if name in trainable:
            moved += not torch.equal(parameter, base_params[name])
        else:
            assert torch.equal(parameter, base_params[name]), f"frozen parameter {name} changed"
    assert moved == len(trainable)
    assert (tmp_path / "run" / "curve.png").stat().st_size > 1000
    assert load_checkpoint(tmp_path / "run" / "best").metadata["training"]["epoch"] >= 1


def test_a_resumed_run_continues_exactly(config, tmp_path):
    straight = finetune.run(config, tmp_path / "straight", cache_dir=tmp_path / "cache", device="cpu")
    finetune.run(replace(config, epochs=1), tmp_path / "resumed", cache_dir=tmp_path / "cache", device="cpu")
    resumed = finetune.run(config, tmp_path / "resumed", cache_dir=tmp_path / "cache", device="cpu")
    assert [row["epoch"] for row in resumed["history"]] == [0, 1, 2]
    assert resumed["history"] == straight["history"]
    straight_tensors = load_checkpoint(tmp_path / "straight").tensors
    resumed_tensors = load_checkpoint(tmp_path / "resumed").tensors
    for name, tensor in straight_tensors.items():
        assert torch.equal(tensor, resumed_tensors[name])


def test_resuming_with_other_settings_is_refused(config, tmp_path):
    finetune.run(replace(config, epochs=1), tmp_path / "run", cache_dir=tmp_path / "cache", device="cpu")
    with pytest.raises(ValueError, match=r"other settings \(lr\)"):
        finetune.run(replace(config, lr=1.0), tmp_path / "run", cache_dir=tmp_path / "cache", device="cpu")


def test_wise_averaging_halves_the_way_to_the_base():
    base = {"w": torch.zeros(3)}
    tuned = {"w": torch.tensor([2.0, 4.0, -2.0])}
    torch.testing.assert_close(finetune.wise_average(tuned, base, 0.5)["w"], torch.tensor([1.0, 2.0, -1.0]))


@pytest.mark.parametrize("kind", finetune.LOSSES)
def test_losses_prefer_aligned_texts(kind):
    torch.manual_seed(0)
    differences = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    noise = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    aligned = finetune.pair_loss(differences, differences, kind, tau=0.1)
    shuffled = finetune.pair_loss(noise, differences, kind, tau=0.1)
    assert aligned < shuffled



def test_mse_compares_with_the_raw_image_difference_and_infonce_with_its_direction(config, tmp_path, encoder):
    """The authors' MSE variant: ‖f(T) − (ĝ(I₁) − ĝ(I₂))‖², the difference not renormalized;
    InfoNCE is a cosine, so its value does not depend on the difference's length."""
    train, _ = finetune.build_data(encoder, config, tmp_path)
    lengths = train.differences.norm(dim=-1)
    assert (lengths < 0.99).any()  # raw differences of unit embeddings, not unit vectors
    texts = torch.nn.functional.normalize(torch.randn(8, train.differences.shape[1]), dim=-1)
    raw = train.differences[:8]
    unit = torch.nn.functional.normalize(raw, dim=-1)
    assert finetune.pair_loss(texts, raw, "mse", tau=0.1) == torch.nn.functional.mse_loss(texts, raw)
    torch.testing.assert_close(
        finetune.pair_loss(texts, raw, "infonce", tau=0.1), finetune.pair_loss(texts, unit, "infonce", tau=0.1)
    )

def test_bad_configuration_is_refused(pairs_file):
    with pytest.raises(ValueError, match="unknown loss"):
        finetune.FinetuneConfig(pairs=str(pairs_file), loss="hinge")
    with pytest.raises(ValueError, match="wise_alpha"):
        finetune.FinetuneConfig(pairs=str(pairs_file), wise_alpha=1.5)


def test_two_process_data_parallel_run_under_torchrun(pairs_file, tmp_path):
    """torchrun with 2 CPU processes (gloo): replicas stay in sync and rank 0 writes the checkpoint."""
    import os
    import signal
    import subprocess
    import sys

    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "cli", "finetune", "--pairs", str(pairs_file), "--out", str(tmp_path / "ddp"),
        "--epochs", "1", "--batch-size", "32", "--lr", "2e-4", "--val-fraction", "0.2",
        "--cache-dir", str(tmp_path / "cache"), "--device", "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=240)
    finally:  # never leave workers behind, whatever happened
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, stderr[-3000:]
    report = json.loads((tmp_path / "ddp" / "report.json").read_text())
    assert report["workers"] == 2
    assert load_checkpoint(tmp_path / "ddp").base == "tiny-base"


def test_a_run_too_small_to_mean_anything_says_so(pairs_file, tmp_path, capsys):
    """The README's old quick start in small: a batch larger than the training pairs (one step
    per epoch) and a validation set of a few pairs, which the run used to report without a word."""
    config = finetune.FinetuneConfig(pairs=str(pairs_file), base="tiny-base", epochs=1, batch_size=512)
    report = finetune.run(config, tmp_path / "run", cache_dir=tmp_path / "cache", device="cpu")
    assert report["train_pairs"] < 512 and report["val_pairs"] < finetune.MIN_VAL_PAIRS
    assert len(report["warnings"]) == 2
    batch, validation = report["warnings"]
    assert f"exceeds the {report['train_pairs']} training pairs" in batch and "--batch-size" in batch
    assert f"validation holds {report['val_pairs']} pairs" in validation and "--val-fraction" in validation
    printed = capsys.readouterr()
    assert f"warning: {batch}" in printed.out + printed.err


def test_a_sound_run_is_not_warned_about(pairs_file):
    config = finetune.FinetuneConfig(pairs=str(pairs_file), batch_size=128, val_fraction=0.2)
    assert finetune.data_warnings(train_pairs=2000, val_pairs=120, config=config) == []
    assert len(finetune.data_warnings(train_pairs=100, val_pairs=120, config=config)) == 1


def test_the_curve_compares_losses_measured_alike(config, tmp_path, monkeypatch):
    """Both loss curves are per-chunk means at one batch size, in eval mode: the validation pairs
    and a fixed sample of as many training pairs (not the running loss at the training batch)."""
    import matplotlib.figure

    drawn = {}
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda figure, path, **_: drawn.update(axes=figure.axes))
    report = finetune.run(config, tmp_path / "run", cache_dir=tmp_path / "cache", device="cpu")
    pairs, batch = report["val_pairs"], report["eval_batch_size"]
    assert batch == min(config.batch_size, pairs) and pairs < config.batch_size  # the case that differed
    loss_axis, accuracy_axis = drawn["axes"]
    for axis, metric in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        curves = {line.get_label(): list(line.get_ydata()) for line in axis.get_lines() if line.get_label()[0] != "_"}
        assert curves == {
            f"train (fixed sample of {pairs} pairs)": [row[f"train_sample_{metric}"] for row in report["history"]],
            f"validation ({pairs} pairs)": [row[f"val_{metric}"] for row in report["history"]],
        }
    assert loss_axis.get_ylabel() == f"infonce loss, batches of {batch} pairs"
