"""The paper suite's report: every figure beside the paper's, and whether it was reproduced.

A figure counts as reproduced when the paper's value (or range) lies within two standard
errors of ours: over seeds for difference tasks, binomial for accuracies on a test set, over
pairs for the geometry distance. Figures the paper does not report are shown without a mark.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORTED = Path(__file__).parents[1] / "data" / "paper" / "reported.json"
WHO = ("baseline", "model")


def reported_figures() -> list[dict[str, Any]]:
    return json.loads(REPORTED.read_text())["figures"]


def _ours(results: dict[str, Any], figure: dict[str, Any], who: str) -> tuple[float, float] | None:
    block = results.get(figure["section"], {}).get(figure["item"], {}).get(who)
    if figure["section"] == "comparative" and isinstance(block, dict):
        block = block.get("subset")
    if not isinstance(block, dict) or figure["metric"] not in block:
        return None
    return block[figure["metric"]], block.get("stderr", 0.0)


def reproduced(value: float, stderr: float, paper: float | list[float]) -> bool:
    low, high = (paper, paper) if isinstance(paper, (int, float)) else paper
    return value - 2 * stderr <= high and low <= value + 2 * stderr


def compare(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (reported figure, model): paper, ours ± s.e., reproduced (None when not run)."""
    rows = []
    for figure in reported_figures():
        for who in WHO:
            if who not in figure:
                continue
            ours = _ours(results, figure, who)
            rows.append({"section": figure["section"], "item": figure["item"], "metric": figure["metric"], "who": who,
                         "paper": figure[who], "ours": ours[0] if ours else None,
                         "stderr": ours[1] if ours else None,
                         "reproduced": reproduced(*ours, figure[who]) if ours else None})
    return rows


def reported_differences() -> dict[str, dict[str, float]]:
    """{task: {"model"/"baseline": value}} for the plot's paper ticks (a range shows its middle)."""
    ticks: dict[str, dict[str, float]] = {}
    for figure in reported_figures():
        if figure["section"] == "difference":
            ticks[figure["item"]] = {who: (v if isinstance(v, (int, float)) else sum(v) / 2)
                                     for who in WHO if (v := figure.get(who)) is not None}
    return ticks


def _figure(value: float | list[float] | None, metric: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return "–".join(_figure(v, metric) for v in value)
    return f"{value:.3f}" if metric == "distance" else f"{value:+.1%}" if metric == "gain" else f"{value:.1%}"


def _mark(flag: bool | None) -> str:
    return {True: "✓ reproduced", False: "✗ not reproduced", None: "not run"}[flag]


def markdown(results: dict[str, Any]) -> str:
    lines = ["# PC-CLIP: the paper's evaluation", ""]
    for who in WHO:
        meta = results["models"][who]
        lines.append(f"- **{who}**: `{meta['spec']}` (fingerprint `{meta['fingerprint'][:12]}`, {meta['precision']} "
                     f"on {meta['device']})")
    protocol = results["protocol"]
    lines += ["", f"Data: `{protocol['data_root']}`. Difference tasks: {protocol['seeds']} seeds × "
              f"{protocol['images_per_seed']} sampled test images, pairs in both orders, correct iff cos > 0.", ""]
    lines += [f"- skipped: {message}" for message in results["skipped"].values()]
    lines += ["", "## Beside the paper", "",
              "Paper figures as PAPER.md reports them (a range where the paper gives one for a group of tasks). "
              "Reproduced: the paper's figure lies within 2 s.e. of ours.", "",
              "| section | figure | | paper | ours | |", "| --- | --- | --- | --- | --- | --- |"]
    for row in results["paper"]:
        error_metric = "distance" if row["metric"] == "distance" else ""
        ours = "—" if row["ours"] is None else \
            f"{_figure(row['ours'], row['metric'])} ± {_figure(row['stderr'], error_metric)}"
        lines.append(f"| {row['section']} | {row['item']} | {row['who']} | {_figure(row['paper'], row['metric'])} | "
                     f"{ours} | {_mark(row['reproduced'])} |")
    lines += _sections(results)
    return "\n".join(lines) + "\n"


def _sections(results: dict[str, Any]) -> list[str]:
    lines = ["", "## Difference classification", "", "| task | baseline | model | pairs per seed |",
             "| --- | --- | --- | --- |"]
    for task, row in results["difference"].items():
        cells = [f"{row[w]['accuracy']:.1%} ± {row[w]['stderr']:.1%}" for w in WHO]
        lines.append(f"| {task} | {cells[0]} | {cells[1]} | {', '.join(map(str, row['pairs_per_seed']))} |")
    lines += ["", "## Zero-shot (\"This is a photo of a {label}\")", "", "| data set | images | baseline | model |",
              "| --- | --- | --- | --- |"]
    for name, row in results["zero_shot"].items():
        base, model = row["baseline"], row["model"]
        lines.append(f"| {name} | {model['n']} | {base['accuracy']:.1%} ± {base['stderr']:.1%} | "
                     f"{model['accuracy']:.1%} ± {model['stderr']:.1%} |")
    lines += ["", "## Comparative prompting (α = 0.8, top-3 confusions, LLM-written texts)", ""]
    for name, block in results["comparative"].items():
        for who in WHO:
            entry = block[who]
            if "skipped" in entry:
                lines.append(f"- {name}, {who}: skipped ({entry['skipped']})")
                continue
            pairs = confusions_text(entry)
            every, subset = entry["all classes"], entry["subset"]
            lines.append(f"- {name}, {who} ({pairs}): all classes {every['before']:.1%} → {every['after']:.1%} "
                         f"(confused classes {every['confused_before']:.1%} → {every['confused_after']:.1%}); "
                         f"subset {subset['before']:.1%} → {subset['after']:.1%}")
    lines += ["", "## Geometry (1 − cos(normalize(f(A) − f(B)), f(c_AB)), lower is better)", ""]
    for name, row in results["geometry"].items():
        lines.append(f"- {name}: baseline {row['baseline']['distance']:.3f}, model {row['model']['distance']:.3f} "
                     f"over {row['model']['pairs']} pairs")
    lines += ["", "## Retrieval", ""]
    for name, row in results["retrieval"].items():
        lines += [f"| {name} | baseline | model |", "| --- | --- | --- |"]
        lines += [f"| {metric} | {row['baseline'][metric]:.1%} | {value:.1%} |"
                  for metric, value in row["model"].items()]
    return lines


def confusions_text(entry: dict[str, Any]) -> str:
    """A comparative entry's confused pairs as "true → predicted; …"."""
    return "; ".join(f"{c['true']} → {c['predicted']}" for c in entry["confusions"])
