"""`pcclip eval`: every metric for a model and its baseline, written as JSON, Markdown and PNG."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from models import create_model
from training.evaluation.comparative import evaluate_comparative, fashion_comparative
from training.evaluation.difference import TASKS, Task, evaluate_differences
from training.evaluation.geometry_check import geometry_distance
from training.evaluation.probes import base_model_probes
from training.evaluation.retrieval import retrieval_recall
from training.evaluation.zero_shot import Probe, evaluate_probes


def evaluate(
    model: str,
    baseline: str,
    *,
    seeds: int = 5,
    pairs_per_seed: int = 100,
    device: str = "auto",
    progress: bool = True,
    tasks: dict[str, Task] | None = None,
    probes: Sequence[Probe] | None = None,
) -> dict[str, Any]:
    """Every metric for `model` and `baseline`; `tasks` (default: all difference tasks) and
    `probes` (default: the base-model probes) narrow it. `progress` shows one bar over every
    step: each difference task and seed, then each probe and metric, model by model."""
    encoders = {"model": create_model(model, device=device), "baseline": create_model(baseline, device=device)}
    tasks = TASKS if tasks is None else tasks
    probes = base_model_probes(seed=1000) if probes is None else probes
    zero_shot: dict[str, dict[str, Any]] = {name: {} for name in encoders}
    comparative, retrieval, geometry = {}, {}, {}
    steps = len(tasks) * seeds + len(encoders) * (len(probes) + 3)
    with tqdm(total=steps, desc="pcclip eval", unit="step", disable=not progress) as bar:

        def done(step: str) -> None:
            bar.set_postfix_str(step, refresh=False)
            bar.update()

        differences = evaluate_differences(
            encoders, seeds=range(seeds), pairs_per_seed=pairs_per_seed, tasks=tasks, progress=done
        )
        for name, encoder in encoders.items():
            for probe in probes:
                zero_shot[name].update(evaluate_probes(encoder, [probe]))
                done(f"{name}: zero-shot {probe.name}")
            comparative[name] = _comparative(encoder, probes)
            done(f"{name}: comparative prompting")
            retrieval[name] = retrieval_recall(encoder)
            done(f"{name}: retrieval")
            geometry[name] = geometry_distance(encoder)
            done(f"{name}: geometry")
    return {
        "models": {name: {"spec": e.spec, "fingerprint": e.fingerprint} for name, e in encoders.items()},
        "protocol": {"seeds": seeds, "pairs_per_seed": pairs_per_seed},
        "difference": differences,
        "zero_shot": zero_shot,
        "comparative": comparative,
        "retrieval": retrieval,
        "geometry": geometry,
    }


def _comparative(encoder, probes) -> dict[str, Any]:
    """Comparative prompting on Fashion-MNIST (skipped when the data set is not installed)."""
    from training.sources.fashion_mnist import FASHION_CLASSES

    fashion = [probe for probe in probes if probe.name.startswith("fashion-mnist")]
    if not fashion:
        return {"skipped": "Fashion-MNIST is not installed (make data)"}
    return evaluate_comparative(encoder, fashion[0], FASHION_CLASSES, fashion_comparative)


def headline(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Mean difference accuracy over tasks, mean zero-shot accuracy over probes, geometry."""
    rows = {}
    for name in results["models"]:
        tasks = results["difference"].values()
        probes = results["zero_shot"][name].values()
        rows[name] = {
            "difference": sum(task[name]["accuracy"] for task in tasks) / len(results["difference"]),
            "zero_shot": sum(probe["accuracy"] for probe in probes) / len(results["zero_shot"][name]),
            "geometry": results["geometry"][name],
        }
    return rows


def markdown(results: dict[str, Any]) -> str:
    models = results["models"]
    lines = ["# PC-CLIP evaluation", ""]
    for name, meta in models.items():
        lines.append(f"- **{name}**: `{meta['spec']}` (fingerprint `{meta['fingerprint'][:12]}`)")
    top = headline(results)
    lines += ["", "## Headline", "", "| | model | baseline |", "| --- | --- | --- |"]
    lines.append(f"| difference classification, mean over tasks | {top['model']['difference']:.1%} | "
                 f"{top['baseline']['difference']:.1%} |")
    lines.append(f"| zero-shot, mean over probes | {top['model']['zero_shot']:.1%} | "
                 f"{top['baseline']['zero_shot']:.1%} |")
    lines.append(f"| geometry distance (lower is better) | {top['model']['geometry']:.3f} | "
                 f"{top['baseline']['geometry']:.3f} |")
    protocol = results["protocol"]
    lines += ["", "## Difference classification", "",
              f"Correct iff cos(f(text), ĝ(I₁) − ĝ(I₂)) > 0; chance 50%. {protocol['seeds']} seeds × "
              f"{protocol['pairs_per_seed']} held-out pairs; mean ± standard error.", "",
              "| task | model | baseline | gain |", "| --- | --- | --- | --- |"]
    for task, row in results["difference"].items():
        m, b = row["model"], row["baseline"]
        lines.append(f"| {task} | {m['accuracy']:.1%} ± {m['stderr']:.1%} | {b['accuracy']:.1%} ± {b['stderr']:.1%} "
                     f"| {m['accuracy'] - b['accuracy']:+.1%} |")
    lines += ["", "## Zero-shot classification", "", "Held-out images, prompt \"This is a photo of …\".", "",
              "| probe | chance | model | baseline |", "| --- | --- | --- | --- |"]
    for probe, row in results["zero_shot"]["model"].items():
        base = results["zero_shot"]["baseline"][probe]
        lines.append(f"| {probe} | {row['chance']:.0%} | {row['accuracy']:.1%} | {base['accuracy']:.1%} |")
    lines += ["", "## Comparative prompting", "",
              "Top-3 confusions of each model on held-out Fashion-MNIST; for each, a comparative text moves "
              "the predicted class's prototype (PAPER.md). Accuracy on the confused classes / overall.", ""]
    for name in models:
        block = results["comparative"][name]
        if "skipped" in block:
            lines.append(f"- {name}: skipped ({block['skipped']})")
            continue
        pairs = "; ".join(f"{c['true']} → {c['predicted']}" for c in block["confusions"])
        lines += [f"**{name}** — confusions: {pairs}", "", "| α | confused classes | overall |", "| --- | --- | --- |"]
        lines += [f"| {row['alpha']:.1f} | {row['confused']:.1%} | {row['overall']:.1%} |" for row in block["sweep"]]
        lines.append("")
    if "retrieval" in results:
        lines += ["", "## Retrieval", "", "Held-out captioned images; a caption's own image is its one right answer.",
                  "", "| source | metric | model | baseline |", "| --- | --- | --- | --- |"]
        for source, row in results["retrieval"]["model"].items():
            for metric, value in row.items():
                base = results["retrieval"]["baseline"][source][metric]
                lines.append(f"| {source} | {metric} | {value:.1%} | {base:.1%} |")
    lines += ["", "## Geometry", "",
              "1 − cos(normalize(f(A) − f(B)), f(c_AB)) over colour and shape class prompts; lower is better.", "",
              f"model {results['geometry']['model']:.3f}, baseline {results['geometry']['baseline']:.3f}", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path, reported: dict[str, dict[str, float]] | None = None) -> None:
    """Difference accuracy per task, model beside baseline, ± s.e.; `reported` ({task: {name:
    value}}) adds the paper's figure as a black tick on each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["difference"])
    figure, axis = plt.subplots(figsize=(8, 3.8))
    width = 0.38
    for offset, name in ((-width / 2, "baseline"), (width / 2, "model")):
        values = [results["difference"][task][name]["accuracy"] for task in tasks]
        errors = [results["difference"][task][name]["stderr"] for task in tasks]
        label = f"{name}: {results['models'][name]['spec']}"
        axis.bar([i + offset for i in range(len(tasks))], values, width, yerr=errors, label=label)
        paper = [(i + offset, (reported or {})[task][name]) for i, task in enumerate(tasks)
                 if name in (reported or {}).get(task, {})]
        if paper:
            xs, ys = zip(*paper, strict=True)
            axis.scatter(xs, ys, marker="_", s=400, color="black", zorder=3,
                         label="paper (reported)" if name == "model" else None)
    axis.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axis.set_xticks(range(len(tasks)), tasks, rotation=20, ha="right")
    axis.set_ylabel("difference accuracy")
    axis.set_ylim(0, 1)
    axis.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(results: dict[str, Any], folder: Path, render=markdown, reported=None) -> Path:
    """report.json, report.md (`render(results)`) and difference.png (`reported`: see `plot`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / "report.md").write_text(render(results))
    plot(results, folder / "difference.png", reported)
    return folder
