"""`kill -9` during `pcclip finetune`, then the same command again: the run resumes where the
last saved epoch ended. A damaged state file is refused with a message, not a traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli.main import cli, register
from common.files import CHECKSUM_FOOTER
from models import load_checkpoint
from training import finetune, run_state
from training.describers.attributes import AttributeDescriber
from training.pair_builder import build_pairs
from training.sources.base import load_source

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 2


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pairs")
    samples = load_source("scenes", split="train", limit=24, seed=5)
    build_pairs(samples, AttributeDescriber(seed=0), folder / "pairs.jsonl", budget=80, seed=0)
    return folder / "pairs.jsonl"


def finetune_args(pairs: Path, out: Path, cache: Path, epochs: int = EPOCHS) -> list[str]:
    return [
        "finetune", "--pairs", str(pairs), "--out", str(out), "--cache-dir", str(cache), "--base", "tiny-base",
        "--epochs", str(epochs), "--batch-size", "16", "--lr", "2e-4", "--val-fraction", "0.2", "--device", "cpu",
    ]  # fmt: skip


def run_in_process(args: list[str]):
    register()
    return CliRunner().invoke(cli, args)


def test_a_run_killed_mid_epoch_resumes_when_rerun(pairs_file, tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = finetune_args(pairs_file, out, cache)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    state = out / run_state.STATE_FILE
    try:
        deadline = time.monotonic() + 90
        while not state.exists():  # epoch 1's state is written; epoch 2 is now running
            assert run.poll() is None, run.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no epoch finished in time"
            time.sleep(0.005)
        os.kill(run.pid, signal.SIGKILL)
    finally:
        run.kill()
        run.wait()
    assert run.returncode == -signal.SIGKILL
    assert not (out / "metadata.json").exists()  # it died before exporting

    rerun = run_in_process(args)
    assert rerun.exit_code == 0, rerun.output
    assert f"resuming {out} after epoch 1" in rerun.output
    history = load_checkpoint(out).metadata["training"]["history"]
    assert [row["epoch"] for row in history] == list(range(EPOCHS + 1))  # each epoch exactly once
    assert not list(out.rglob(".*.tmp"))  # whatever the killed run was writing is gone
    report = json.loads((out / "report.json").read_text())
    assert [row["epoch"] for row in report["history"]] == list(range(EPOCHS + 1))


@pytest.fixture(scope="module")
def saved_run(pairs_file, tmp_path_factory) -> tuple[Path, list[str]]:
    """A one-epoch run of two: its folder, and the command that resumes it."""
    folder = tmp_path_factory.mktemp("saved")
    result = run_in_process(finetune_args(pairs_file, folder / "run", folder / "cache", epochs=1))
    assert result.exit_code == 0, result.output
    return folder / "run", finetune_args(pairs_file, folder / "run", folder / "cache")


def _flip(path: Path, at: float) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))


STATE_FAULTS = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "bit flip in tensor data": lambda p: _flip(p, 0.5),
    "bit flip in the footer": lambda p: _flip(p, 0.99999),
    "empty": lambda p: p.write_bytes(b""),
    "garbage": lambda p: p.write_bytes(b"not a torch file" * 10),
}


@pytest.mark.parametrize("fault", STATE_FAULTS)
def test_a_damaged_state_file_is_refused_with_what_to_do(saved_run, tmp_path, fault):
    run, args = saved_run
    copy = tmp_path / "run"
    copy.mkdir()
    shutil.copy(run / run_state.STATE_FILE, copy / run_state.STATE_FILE)
    STATE_FAULTS[fault](copy / run_state.STATE_FILE)
    args = [str(copy) if arg == str(run) else arg for arg in args]
    before = sorted(copy.rglob("*")), (copy / run_state.STATE_FILE).read_bytes()
    result = run_in_process(args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())  # the terminal may wrap it
    assert f"{copy / run_state.STATE_FILE} is corrupt" in message
    assert "Delete it to restart the run" in message
    assert (sorted(copy.rglob("*")), (copy / run_state.STATE_FILE).read_bytes()) == before  # nothing touched


def test_a_state_written_before_checksums_still_resumes(saved_run, tmp_path):
    """States saved by earlier versions (plain torch.save, no footer) load as before."""
    run, _ = saved_run
    data = (run / run_state.STATE_FILE).read_bytes()
    legacy = tmp_path / run_state.STATE_FILE
    legacy.write_bytes(data[: -CHECKSUM_FOOTER.size])
    config = json.loads(torch.load(legacy, weights_only=True)["config"])
    state = run_state.read_state(legacy, asdict(finetune.FinetuneConfig(**config)))
    assert state is not None and state["epoch"] == 1
