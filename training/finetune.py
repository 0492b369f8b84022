"""PC-CLIP finetuning (PAPER.md): align f(T₁₂) with normalize(ĝ(I₁) − ĝ(I₂)).

Only the text transformer blocks train (`models.towers`); the image tower is frozen, so image
embeddings come from the on-disk cache and a step runs the text tower alone.

    build_data → build_optimizer → for each epoch: train_one_epoch, evaluate, save → export
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from common.files import remove_temp_files, write_atomic
from models import create_model, save_checkpoint
from models.encoder import Encoder
from models.towers import text_block_names, text_block_state
from models.trimmed_text import encode_text_trimmed
from training import distributed
from training.distributed import SINGLE, Worker
from training.embedding_cache import EmbeddingCache
from training.pairs import read_pairs, split_by_image
from training.run_state import STATE_FILE, read_state, write_state

LOSSES = ("infonce", "mse")
# Fewer validation pairs than this and accuracy moves in steps of over 2 points, with a standard
# error of up to 7: a run's before → after then says little.
MIN_VAL_PAIRS = 50


@dataclass(frozen=True)
class FinetuneConfig:
    pairs: str  # a pairs JSONL file (training.pairs)
    base: str = "tiny-base"  # model spec of the base model
    epochs: int = 20  # paper: 20
    batch_size: int = 512  # paper: 512
    lr: float = 1e-5  # paper: 1e-8 for ViT-L-14; the tiny model needs its own (see README)
    gamma: float = 0.9  # ExponentialLR factor per epoch (paper: 0.9)
    loss: str = "infonce"  # "infonce" (paper) or "mse"
    tau: float = 1.0  # InfoNCE temperature (paper's code: 1)
    grad_accum: int = 1  # micro-batches per optimizer step; each has its own in-batch negatives
    val_fraction: float = 0.1  # images held out for validation (pairs across the split dropped)
    wise_alpha: float = 1.0  # export θ = a·θ_finetuned + (1 − a)·θ_base; paper's code: 0.5
    seed: int = 0
    export_dtype: str = "float32"  # "float16" halves the checkpoint

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; expected one of {', '.join(LOSSES)}")
        if not 0.0 <= self.wise_alpha <= 1.0:
            raise ValueError(f"wise_alpha must be in [0, 1], got {self.wise_alpha}")
        if self.batch_size < 2 or self.grad_accum < 1 or self.epochs < 1 or self.tau <= 0:
            raise ValueError("batch_size ≥ 2, grad_accum ≥ 1, epochs ≥ 1 and tau > 0 are required")


@dataclass
class PairData:
    tokens: torch.Tensor  # (P, L) long, the difference texts
    differences: torch.Tensor  # (P, D) ĝ(I₁) − ĝ(I₂) of unit image embeddings (not renormalized), cached

    def __len__(self) -> int:
        return len(self.tokens)


def build_data(encoder: Encoder, config: FinetuneConfig, cache_dir: Path) -> tuple[PairData, PairData]:
    """Train and validation pairs (disjoint images) with cached image differences."""
    pairs_path = Path(config.pairs)
    records = read_pairs(pairs_path)
    if not records:
        raise ValueError(f"{pairs_path}: no pairs")
    train, val = split_by_image(records, config.val_fraction, config.seed)
    if not train:
        raise ValueError(f"{pairs_path}: no training pairs left after holding out validation images")
    cache = EmbeddingCache(cache_dir, encoder)
    root = pairs_path.parent

    def to_data(subset) -> PairData:
        firsts = cache.embed([record.paths(root)[0] for record in subset])
        seconds = cache.embed([record.paths(root)[1] for record in subset])
        return PairData(
            tokens=encoder.tokenize([record.text for record in subset]),
            differences=firsts - seconds,
        )

    return to_data(train), to_data(val) if val else PairData(torch.empty(0, 1).long(), torch.empty(0, 1))


def pair_loss(texts: torch.Tensor, differences: torch.Tensor, kind: str, tau: float) -> torch.Tensor:
    """texts (B, D) normalized text embeddings, differences (B, D) raw image differences ĝ(I₁) − ĝ(I₂).

    infonce: symmetric cross-entropy over t @ normalize(d)ᵀ / τ with in-batch negatives (the paper's loss).
    mse: mean squared error between t and the raw d (the variant the paper reports as similar; as the
    authors' code, the difference is not normalized).
    """
    if kind == "mse":
        return F.mse_loss(texts, differences)
    logits = texts @ F.normalize(differences, dim=-1).T / tau  # (B, B)
    targets = torch.arange(len(texts), device=texts.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def freeze_all_but_text_blocks(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    trainable = set(text_block_names(model))
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name in trainable
    return [parameter for name, parameter in model.named_parameters() if name in trainable]


def build_optimizer(parameters, config: FinetuneConfig):
    optimizer = torch.optim.Adam(parameters, lr=config.lr)
    return optimizer, torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.gamma)


def encode_texts_train(encoder: Encoder, tokens: torch.Tensor) -> torch.Tensor:
    """Unit text embeddings with gradients, the padding columns trimmed (`encode_text_trimmed`:
    the same vectors; a 15-token caption no longer costs a 77-token forward and backward)."""
    return F.normalize(encode_text_trimmed(encoder.model, tokens.to(encoder.device)).float(), dim=-1)


def train_one_epoch(
    encoder: Encoder, data: PairData, optimizer, config: FinetuneConfig, epoch: int, worker: Worker = SINGLE
) -> float:
    """One pass over shuffled training pairs; returns the mean loss (over all workers)."""
    encoder.model.train()
    generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
    order = torch.randperm(len(data), generator=generator)
    micro = max(2, config.batch_size // config.grad_accum)
    batches = [order[i:i + micro] for i in range(0, len(order), micro)]
    batches = [b for b in batches if len(b) >= 2 * worker.world]  # every share needs a negative
    parameters = [p for p in encoder.model.parameters() if p.requires_grad]
    losses = []
    progress = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False,
                    disable=not worker.main)
    optimizer.zero_grad(set_to_none=True)
    for step, batch in enumerate(progress, start=1):
        mine = distributed.shard(batch, worker)
        texts = encode_texts_train(encoder, data.tokens[mine])
        loss = pair_loss(texts, data.differences[mine].to(encoder.device), config.loss, config.tau)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} in epoch {epoch + 1}; lower --lr")
        (loss / config.grad_accum).backward()
        if step % config.grad_accum == 0 or step == len(batches):
            distributed.average_gradients(parameters, worker)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        progress.set_postfix(loss=f"{loss.item():.4f}")
    return distributed.mean(sum(losses) / max(1, len(losses)), worker)


def data_warnings(train_pairs: int, val_pairs: int, config: FinetuneConfig) -> list[str]:
    """What would make a run's numbers mean little, said before it starts."""
    found = []
    if config.batch_size > train_pairs:
        found.append(
            f"the batch of {config.batch_size} pairs exceeds the {train_pairs} training pairs, so each epoch is "
            "a single optimizer step; use more pairs or a smaller --batch-size"
        )
    if config.val_fraction > 0 and val_pairs < MIN_VAL_PAIRS:
        found.append(
            f"validation holds {val_pairs} pairs (both images among the {config.val_fraction:.0%} held out; pairs "
            f"across the split are dropped), fewer than {MIN_VAL_PAIRS}: its accuracy says little; use more pairs "
            "or a larger --val-fraction"
        )
    return found


def eval_batch_size(config: FinetuneConfig, val: PairData) -> int:
    """Pairs per chunk of both evaluation losses (in-batch InfoNCE grows with the batch, so the
    train-sample and validation curves compare only at one size): the training batch, or the
    validation set when it is smaller."""
    return max(2, min(config.batch_size, len(val))) if len(val) else config.batch_size


def train_sample(train: PairData, size: int, seed: int) -> PairData:
    """A fixed random sample of `size` training pairs, measured like the validation set every epoch."""
    rows = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:size]
    return PairData(train.tokens[rows], train.differences[rows])


@torch.no_grad()
def evaluate(encoder: Encoder, data: PairData, config: FinetuneConfig, batch: int) -> dict[str, float]:
    """Loss (mean over chunks of `batch` pairs, eval mode) and difference-classification
    accuracy (cos(f(T), d) > 0) of `data`."""
    if len(data) == 0:
        return {}
    encoder.model.eval()
    texts = torch.cat([encode_texts_train(encoder, chunk) for chunk in data.tokens.split(256)]).cpu()
    scores = (texts * data.differences).sum(dim=1)
    losses = [
        pair_loss(texts[i:i + batch], data.differences[i:i + batch], config.loss, config.tau).item()
        for i in range(0, len(data) - 1, batch)
        if min(batch, len(data) - i) >= 2
    ]
    return {"loss": sum(losses) / max(1, len(losses)), "accuracy": (scores > 0).float().mean().item()}


def measure(encoder: Encoder, val: PairData, probe: PairData, config: FinetuneConfig) -> dict[str, float]:
    """The epoch's comparable figures: validation and the fixed train sample, at one batch size."""
    batch = eval_batch_size(config, val)
    row = {f"val_{key}": value for key, value in evaluate(encoder, val, config, batch).items()}
    row.update({f"train_sample_{key}": value for key, value in evaluate(encoder, probe, config, batch).items()})
    return row


def wise_average(finetuned: dict[str, torch.Tensor], base: dict[str, torch.Tensor], alpha: float):
    """WiSE-FT: θ = α·θ_finetuned + (1 − α)·θ_base, parameter by parameter."""
    return {name: alpha * tensor + (1 - alpha) * base[name] for name, tensor in finetuned.items()}


def run(config: FinetuneConfig, out: Path, *, cache_dir: Path, device: str = "auto") -> dict[str, Any]:
    """Finetune, validating and checkpointing every epoch; resumes from `out` if it holds a run.

    Under torchrun every process runs this; see `training.distributed`.
    """
    worker, device = distributed.start(device)
    try:
        return _run(config, Path(out), cache_dir, device, worker)
    finally:
        distributed.stop(worker)


def _run(config: FinetuneConfig, out: Path, cache_dir: Path, device: str, worker: Worker) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    saved = read_state(out / STATE_FILE, asdict(config))  # checked before the model loads: fail fast
    if worker.main:  # what a killed run was writing (the state alone is ~3× the text tower)
        for folder in (out, out / "best"):
            remove_temp_files(folder)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    encoder = create_model(config.base, device=device, precision="fp32")
    base_state, base_fingerprint = text_block_state(encoder.model), encoder.fingerprint
    if worker.main:  # the main worker fills the embedding cache; the others then only read it
        train, val = build_data(encoder, config, cache_dir)
    distributed.barrier(worker)
    if not worker.main:
        train, val = build_data(encoder, config, cache_dir)
    warnings = data_warnings(len(train), len(val), config)
    if worker.main:
        for warning in warnings:
            tqdm.write(f"warning: {warning}")
    probe = train_sample(train, len(val), config.seed)  # as many pairs as validation (none without it)
    parameters = freeze_all_but_text_blocks(encoder.model)
    optimizer, scheduler = build_optimizer(parameters, config)
    history: list[dict[str, float]] = []
    start_epoch = _resume(saved, out / STATE_FILE, encoder, optimizer, scheduler, history)
    started = time.monotonic()
    if start_epoch == 0:
        history.append({"epoch": 0, **measure(encoder, val, probe, config)})
    for epoch in range(start_epoch, config.epochs):
        train_loss = train_one_epoch(encoder, train, optimizer, config, epoch, worker)
        scheduler.step()
        history.append({"epoch": epoch + 1, "train_loss": train_loss, **measure(encoder, val, probe, config)})
        distributed.check_in_sync(parameters, worker)
        if worker.main:
            tqdm.write(_epoch_line(history[-1]))
            _save_epoch(out, encoder, optimizer, scheduler, history, config, base_fingerprint)
        distributed.barrier(worker)
    report = {
        "config": asdict(config),
        "train_pairs": len(train),
        "val_pairs": len(val),
        "eval_batch_size": eval_batch_size(config, val),
        "warnings": warnings,
        "workers": worker.world,
        "history": history,
        "seconds": round(time.monotonic() - started, 1),
    }
    if worker.main:
        export(out, encoder, base_state, base_fingerprint, config, report)
    return report


def export(
    out: Path, encoder: Encoder, base_state, base_fingerprint: str, config: FinetuneConfig, report: dict[str, Any]
) -> Path:
    """The final checkpoint in `out` (WiSE-averaged when wise_alpha < 1) + report and curve."""
    tensors = wise_average(text_block_state(encoder.model), base_state, config.wise_alpha)
    save_checkpoint(
        out, tensors, base=config.base, base_fingerprint=base_fingerprint,
        training={**asdict(config), "history": report["history"]},
        dtype=getattr(torch, config.export_dtype),
    )
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_curve(report, out / "curve.png")
    return out


def plot_curve(report: dict[str, Any], path: Path) -> None:
    """Loss and accuracy per epoch of the validation pairs and of an equally large fixed sample
    of training pairs, both measured alike (eval mode, one batch size). The running training
    loss (dropout on, the training batch) is in the report, not here: it does not compare."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    history, pairs = report["history"], report["val_pairs"]
    labels = {"train_sample": f"train (fixed sample of {pairs} pairs)", "val": f"validation ({pairs} pairs)"}
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, metric in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        for subset, label in labels.items():
            points = [(row["epoch"], row[f"{subset}_{metric}"]) for row in history if f"{subset}_{metric}" in row]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend()
    loss_axis.set_ylabel(f"{report['config']['loss']} loss, batches of {report['eval_batch_size']} pairs")
    accuracy_axis.set_ylabel("difference accuracy: cos(f(T), d) > 0")
    accuracy_axis.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _epoch_line(row: dict[str, float]) -> str:
    parts = [f"epoch {row['epoch']}"]
    parts += [f"{key} {value:.4f}" for key, value in row.items() if key != "epoch"]
    return ", ".join(parts)


def _save_epoch(out: Path, encoder, optimizer, scheduler, history, config: FinetuneConfig, base_fingerprint: str):
    """Resumable state after each epoch: torch format (weights only) plus a checksum footer,
    replaced atomically and durably (fsync of the file and the folder)."""
    state = {
        "epoch": history[-1]["epoch"],
        "text_blocks": text_block_state(encoder.model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": json.dumps(history),
        "config": json.dumps(asdict(config), sort_keys=True),
        "rng": torch.get_rng_state(),
    }
    write_atomic(out / STATE_FILE, lambda tmp: write_state(tmp, state))
    best = min((row.get("val_loss", math.inf), row["epoch"]) for row in history)
    if best[1] == history[-1]["epoch"]:
        save_checkpoint(out / "best", text_block_state(encoder.model), base=config.base,
                        base_fingerprint=base_fingerprint, training={**asdict(config), "epoch": best[1]})


def _resume(state: dict[str, Any] | None, path: Path, encoder, optimizer, scheduler, history) -> int:
    """Load a verified state (`read_state`) into the model, optimizer and scheduler; its epoch."""
    if state is None:
        return 0
    parameters = dict(encoder.model.named_parameters())
    with torch.no_grad():
        for name, tensor in state["text_blocks"].items():
            parameters[name].copy_(tensor)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    history.extend(json.loads(state["history"]))
    torch.set_rng_state(state["rng"])
    tqdm.write(f"resuming {path.parent} after epoch {state['epoch']}")
    return int(state["epoch"])
