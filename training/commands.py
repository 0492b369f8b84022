"""The `training` commands of the `pcclip` CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from training import base_model
from training import finetune as finetuning
from training.evaluation.generalization import TINY_FINETUNE_SOURCES
from training.evaluation.probes import base_model_probes
from training.evaluation.zero_shot import evaluate_probes
from training.run_state import ResumeError

DEFAULTS = base_model.BaseTrainConfig()
FINETUNE = finetuning.FinetuneConfig(pairs="")
DEFAULT_CACHE = Path.home() / ".cache" / "pcclip" / "embeddings"
DEFAULT_TEXTS = Path.home() / ".cache" / "pcclip" / "paper" / "llm_texts.jsonl"
SEEN_SOURCES = ",".join(TINY_FINETUNE_SOURCES)


def train_base(
    out: Annotated[Path, typer.Option(help="Folder for config.json, image_tower.safetensors and report.json.")],
    steps: Annotated[int, typer.Option(help="Optimizer steps (~0.5 s each on 2 CPU cores).")] = DEFAULTS.steps,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = DEFAULTS.batch_size,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate.")] = DEFAULTS.lr,
    seed: Annotated[int, typer.Option(help="Seed for data, initialisation and batches.")] = DEFAULTS.seed,
) -> None:
    """Train tiny-base's image tower against the frozen MiniLM text tower, then evaluate it."""
    config = base_model.BaseTrainConfig(seed=seed, steps=steps, batch_size=batch_size, lr=lr)
    probes = base_model_probes(seed=seed)
    report = base_model.run(out, config, evaluate=lambda encoder: evaluate_probes(encoder, probes))
    typer.echo(f"wrote {out}: {base_model.summary(report)}")


def finetune(
    pairs: Annotated[Path, typer.Option(help="Pairs JSONL written by `pcclip pairs`.", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option(help="Checkpoint folder (reused to resume an interrupted run).")],
    base: Annotated[str, typer.Option(help="Model spec of the base model.")] = FINETUNE.base,
    epochs: Annotated[int, typer.Option(help="Passes over the training pairs (paper: 20).")] = FINETUNE.epochs,
    batch_size: Annotated[int, typer.Option(help="Pairs per step; in-batch negatives.")] = FINETUNE.batch_size,
    lr: Annotated[float, typer.Option(help="Adam learning rate (paper: 1e-8 for ViT-L-14).")] = FINETUNE.lr,
    gamma: Annotated[float, typer.Option(help="ExponentialLR factor per epoch.")] = FINETUNE.gamma,
    loss: Annotated[str, typer.Option(help="infonce (paper) or mse.")] = FINETUNE.loss,
    tau: Annotated[float, typer.Option(help="InfoNCE temperature (paper: 1).")] = FINETUNE.tau,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = FINETUNE.grad_accum,
    wise_alpha: Annotated[float, typer.Option(help="Export a·finetuned + (1−a)·base.")] = FINETUNE.wise_alpha,
    val_fraction: Annotated[float, typer.Option(help="Share of images held out.")] = FINETUNE.val_fraction,
    export_dtype: Annotated[str, typer.Option(help="float32 or float16 weights.")] = FINETUNE.export_dtype,
    seed: Annotated[int, typer.Option(help="Seed for the split, shuffling and dropout.")] = FINETUNE.seed,
    cache_dir: Annotated[Path, typer.Option(help="Image-embedding cache.")] = DEFAULT_CACHE,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Finetune the text tower so difference texts align with image-embedding differences."""
    try:
        config = finetuning.FinetuneConfig(
            pairs=str(pairs), base=base, epochs=epochs, batch_size=batch_size, lr=lr, gamma=gamma, loss=loss,
            tau=tau, grad_accum=grad_accum, wise_alpha=wise_alpha, val_fraction=val_fraction,
            export_dtype=export_dtype, seed=seed,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    try:
        report = finetuning.run(config, out, cache_dir=cache_dir, device=device)
    except ResumeError as error:  # a damaged or foreign run in --out: say what to do
        typer.echo(f"pcclip finetune: {error}", err=True)
        raise typer.Exit(1) from error
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun only rank 0 reports
    last = report["history"][-1]
    warned = f" ({len(report['warnings'])} warnings above)" if report["warnings"] else ""
    typer.echo(
        f"wrote {out}: {report['train_pairs']} train / {report['val_pairs']} val pairs, "
        f"val accuracy {report['history'][0].get('val_accuracy', float('nan')):.3f} → "
        f"{last.get('val_accuracy', float('nan')):.3f} in {report['seconds'] / 60:.1f} min{warned}"
    )


def evaluate(
    report: Annotated[Path, typer.Option(help="Folder for report.json, report.md and difference.png.")],
    model: Annotated[str, typer.Option(help="Model spec to evaluate.")] = "tiny",
    baseline: Annotated[str, typer.Option(help="Model spec to compare with.")] = "tiny-base",
    suite: Annotated[str, typer.Option(help="bundled (data shipped here), paper (its data sets) or generalization "
                                            "(kinds of difference on sources the finetune never saw).")] = "bundled",
    data_root: Annotated[Path | None, typer.Option(help="paper: folder holding the data sets (README).")] = None,
    seeds: Annotated[int, typer.Option(help="Seeds per difference task (paper: 5).")] = 5,
    pairs_per_seed: Annotated[int, typer.Option(help="Held-out pairs per seed; paper suite: images sampled per seed "
                                                     "(paper: 100 images).")] = 100,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[str, typer.Option(help="paper: auto (fp16 on CUDA), fp16, bf16 (autocast) or fp32.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="paper: images or texts per forward pass.")] = 256,
    max_images: Annotated[int, typer.Option(help="paper: classification/retrieval images per data set "
                                                 "(0: the whole test split).")] = 0,
    cache_dir: Annotated[Path, typer.Option(help="paper: image-embedding cache.")] = DEFAULT_CACHE,
    texts: Annotated[Path, typer.Option(help="paper: cache of LLM-written difference texts.")] = DEFAULT_TEXTS,
    describer: Annotated[str, typer.Option(help="paper: openai or local writes missing texts; '' = cached only.")] = "",
    base_url: Annotated[str, typer.Option(help="openai: server URL, e.g. http://llm:8000/v1.")] = "",
    llm_model: Annotated[str, typer.Option(help="openai: model name the server serves.")] = "",
    api_key: Annotated[str | None, typer.Option(envvar="PCCLIP_LLM_API_KEY", help="openai: bearer key.")] = None,
    seen_sources: Annotated[str, typer.Option(help="generalization: comma-separated sources the finetune's pairs "
                                                   "came from (default: the shipped tiny's).")] = SEEN_SOURCES,
    sources: Annotated[str, typer.Option(help="generalization: comma-separated sources to score "
                                              "(default: all of emoji, photos, fashion-mnist, cpunks, scenes).")] = "",
) -> None:
    """Difference classification, zero-shot, comparative prompting, retrieval and geometry for a model
    and its baseline: on the bundled data, or with --suite paper on the paper's data sets."""
    if suite == "paper":
        from training.evaluation.paper.suite import SuiteConfig

        if data_root is None or not data_root.is_dir():
            raise typer.BadParameter(f"--suite paper needs --data-root, an existing folder (got {data_root})")
        config = SuiteConfig(data_root=data_root, cache_dir=cache_dir, texts=texts, seeds=seeds,
                             images_per_seed=pairs_per_seed, max_images=max_images, device=device,
                             precision=precision, batch_size=batch_size)
        _evaluate_paper(report, model, baseline, config, _llm_describer(describer, base_url, llm_model, api_key))
        return
    if suite == "generalization":
        _evaluate_generalization(report, model, baseline, seeds=seeds, pairs_per_seed=pairs_per_seed, device=device,
                                 seen=_names(seen_sources), only=_names(sources) or None)
        return
    if suite != "bundled":
        raise typer.BadParameter(f"unknown --suite {suite!r}; expected bundled, paper or generalization")
    from training.evaluation.report import evaluate as run_evaluation
    from training.evaluation.report import headline, write_report

    results = run_evaluation(model, baseline, seeds=seeds, pairs_per_seed=pairs_per_seed, device=device)
    write_report(results, report)
    top = headline(results)
    typer.echo(
        f"wrote {report}: difference {top['model']['difference']:.1%} vs {top['baseline']['difference']:.1%}, "
        f"zero-shot {top['model']['zero_shot']:.1%} vs {top['baseline']['zero_shot']:.1%}, "
        f"geometry {top['model']['geometry']:.3f} vs {top['baseline']['geometry']:.3f}"
    )


def _llm_describer(name: str, base_url: str, llm_model: str, api_key: str | None):
    """The describer that writes the paper suite's missing LLM texts (None: cached texts only)."""
    from training.describers import DescriberOptions, describer_from_options

    if not name:
        return None
    if name not in ("openai", "local"):
        raise typer.BadParameter(f"--describer for the paper suite is openai or local, got {name!r}")
    try:
        return describer_from_options(name, DescriberOptions(base_url=base_url, llm_model=llm_model, api_key=api_key))
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


def _evaluate_paper(report: Path, model: str, baseline: str, config, describer) -> None:
    from training.evaluation.paper.suite import evaluate_paper, headline, write

    try:
        results = evaluate_paper(model, baseline, config, describer,
                                 progress=lambda message: typer.echo(f"  {message}", err=True))
    except (ValueError, RuntimeError) as error:  # contradictory files on disk, a bad option, a refused LLM request
        typer.echo(f"pcclip eval: {error}", err=True)
        raise typer.Exit(1) from error
    write(results, report)
    typer.echo(f"wrote {report}: {headline(results)}")


def _names(listed: str) -> list[str]:
    return [name.strip() for name in listed.split(",") if name.strip()]


def _evaluate_generalization(report: Path, model: str, baseline: str, *, seeds: int, pairs_per_seed: int,
                             device: str, seen: list[str], only: list[str] | None) -> None:
    from training.evaluation.generalization import evaluate_generalization
    from training.evaluation.generalization_report import headline, write

    try:
        results = evaluate_generalization(model, baseline, seeds=seeds, pairs_per_seed=pairs_per_seed, device=device,
                                          seen=seen, only=only,
                                          progress=lambda message: typer.echo(f"  {message}", err=True))
    except ValueError as error:  # an unknown source name
        raise typer.BadParameter(str(error)) from error
    write(results, report)
    typer.echo(f"wrote {report}: {headline(results)}")


def pairs(
    out: Annotated[Path, typer.Option(help="Pairs JSONL to write (appended to: reruns resume).")],
    source: Annotated[list[str], typer.Option(help="Data source(s); pairs never cross sources.")],
    describer: Annotated[str, typer.Option(help="attributes, openai or local.")] = "attributes",
    limit: Annotated[int, typer.Option(help="Pairs to sample (before filtering).")] = 1000,
    images: Annotated[int, typer.Option(help="Images drawn per source (paper: 1,000 COCO images).")] = 1000,
    split: Annotated[str, typer.Option(help="Source split to draw images from.")] = "train",
    min_chars: Annotated[int | None, typer.Option(help="Drop shorter texts (default: 60, 0 for attributes).")] = None,
    check_direction: Annotated[bool, typer.Option(help="Drop texts whose direction contradicts labels.")] = True,
    base_url: Annotated[str, typer.Option(help="openai: server URL, e.g. http://llm:8000/v1.")] = "",
    llm_model: Annotated[str, typer.Option(help="openai: model name the server serves.")] = "",
    api_key: Annotated[str | None, typer.Option(envvar="PCCLIP_LLM_API_KEY", help="openai: bearer key.")] = None,
    concurrency: Annotated[int, typer.Option(help="openai: requests in flight.")] = 8,
    max_clauses: Annotated[int, typer.Option(help="attributes: differences stated per text.")] = 2,
    pairing: Annotated[str, typer.Option(
        help="random; minimal: drawn scenes differing in one fact; edits: one picture at two strengths of an edit "
             "(brightness, contrast, saturation, sharpness, noise, compression, zoom, rotation).")] = "random",
    seed: Annotated[int, typer.Option(help="Seed for images, pairs and wording.")] = 0,
) -> None:
    """Sample image pairs, describe how the first differs from the second, filter, save."""
    from training.describers import DescriberOptions, describer_from_options
    from training.edit_pairs import edit_pairs
    from training.pair_builder import build_pairs, describe_pairs
    from training.sources.base import load_source
    from training.sources.scenes import minimal_pairs
    from training.text_filter import make_filter

    options = DescriberOptions(seed=seed, max_clauses=max_clauses, base_url=base_url, llm_model=llm_model,
                               api_key=api_key, concurrency=concurrency)
    if pairing not in ("random", "minimal", "edits") or (pairing == "minimal" and source != ["scenes"]):
        raise typer.BadParameter("--pairing is random, edits, or minimal with --source scenes alone")
    try:
        writer = describer_from_options(describer, options)
        samples = [] if pairing == "minimal" else [
            sample for name in source for sample in load_source(name, split=split, limit=images, seed=seed)
        ]
    except (ValueError, FileNotFoundError) as error:
        raise typer.BadParameter(str(error)) from error
    keep = make_filter(min_chars=writer.min_chars if min_chars is None else min_chars, check_direction=check_direction)
    try:
        if pairing == "minimal":
            stats = describe_pairs(minimal_pairs(split, limit, seed), writer, out, keep=keep)
        elif pairing == "edits":
            stats = describe_pairs(edit_pairs(samples, limit, seed), writer, out, keep=keep)
        else:
            stats = build_pairs(samples, writer, out, budget=limit, seed=seed, keep=keep)
    except (RuntimeError, ImportError) as error:  # a refused request, or the local model's package missing
        typer.echo(f"pcclip pairs: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"wrote {out}: {stats.summary()}")
