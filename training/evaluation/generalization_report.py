"""The generalization suite's summary and report: per kind over unseen sources first, then every cell.

A cell (source × kind) is flagged when the model scores below the baseline by more than the
gain's standard error. A kind's figure over unseen sources is the plain mean of its cells there;
its s.e. is √(Σ s.e.²) / cells.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.evaluation.paper.table import WHO, confusions_text


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """{"unseen_by_kind": {kind: {baseline, model, gain, gain_stderr, sources}}, "mean_gain_unseen",
    "kinds_unseen", "below_base": [cells], "below_base_unseen_kinds": [kinds]}."""
    cells = results["difference"].values()
    unseen = [cell for cell in cells if not cell["seen_source"]]
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in dict.fromkeys(cell["kind"] for cell in unseen):
        chosen = [cell for cell in unseen if cell["kind"] == kind]
        n = len(chosen)
        by_kind[kind] = {
            **{who: sum(cell[who]["accuracy"] for cell in chosen) / n for who in WHO},
            "gain": sum(cell["gain"] for cell in chosen) / n,
            "gain_stderr": sum(cell["gain_stderr"] ** 2 for cell in chosen) ** 0.5 / n,
            "sources": [cell["source"] for cell in chosen],
        }
    gains = [row["gain"] for row in by_kind.values()]
    return {
        "unseen_by_kind": by_kind,
        "kinds_unseen": len(by_kind),
        "mean_gain_unseen": sum(gains) / len(gains) if gains else None,
        "below_base": [name for name, cell in results["difference"].items() if cell["below_base"]],
        "below_base_unseen_kinds": [kind for kind, row in by_kind.items() if row["gain"] < -row["gain_stderr"]],
    }


def headline(results: dict[str, Any]) -> str:
    summary = results["summary"]
    if summary["mean_gain_unseen"] is None:
        return f"no unseen source ran ({len(results['skipped'])} skipped)"
    return (
        f"mean gain on unseen sources {summary['mean_gain_unseen']:+.1%} over {summary['kinds_unseen']} kinds; "
        f"{len(summary['below_base'])} of {len(results['difference'])} source × kind cells below the baseline "
        f"by more than their s.e.; {len(results['skipped'])} skipped"
    )


def _pct(row: dict[str, Any]) -> str:
    return f"{row['accuracy']:.1%} ± {row['stderr']:.1%}"


def markdown(results: dict[str, Any]) -> str:
    summary, protocol = results["summary"], results["protocol"]
    lines = ["# PC-CLIP generalization: kinds of difference on sources the finetune never saw", ""]
    lines += [
        f"- **{who}**: `{meta['spec']}` (fingerprint `{meta['fingerprint'][:12]}`)"
        for who, meta in results["models"].items()
    ]
    lines += [
        "",
        f"Rule: {protocol['rule']}; chance 50%. {protocol['seeds']} seeds × {protocol['pairs_per_seed']} "
        f"pairs, each scored in both orders with the text for that order; mean ± s.e. over seeds. Texts in "
        f"wordings no training text used (`training/evaluation/wordings.py`).",
        "",
    ]
    lines += [f"- skipped: {message}" for message in results["skipped"].values()]
    lines += [
        "",
        "## Sources",
        "",
        "| source | pool | images | finetune saw it | base image tower saw | kinds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in results["sources"].items():
        lines.append(
            f"| {name} | {row['pool']} | {row['images']} | {'yes' if row['finetune_saw'] else '**no**'} | "
            f"{row['base_image_tower_saw']} | {', '.join(row['kinds'])} |"
        )
    lines += ["", "## Per kind, mean over unseen sources", ""]
    if summary["mean_gain_unseen"] is not None:
        lines.append(
            f"Mean gain over {summary['kinds_unseen']} kinds: **{summary['mean_gain_unseen']:+.1%}**. "
            f"Kinds below base by more than their s.e.: "
            f"{', '.join(summary['below_base_unseen_kinds']) or 'none'}."
        )
    lines += ["", "| kind | sources | baseline | model | gain ± s.e. |", "| --- | --- | --- | --- | --- |"]
    for kind, row in summary["unseen_by_kind"].items():
        flag = " ⚠" if row["gain"] < -row["gain_stderr"] else ""
        lines.append(
            f"| {kind} | {', '.join(row['sources'])} | {row['baseline']:.1%} | {row['model']:.1%} | "
            f"{row['gain']:+.1%} ± {row['gain_stderr']:.1%}{flag} |"
        )
    lines += [
        "",
        "## Every source × kind",
        "",
        "⚠: below the baseline by more than the gain's s.e.",
        "",
        "| source | kind | finetune saw source | baseline | model | gain ± s.e. |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for cell in results["difference"].values():
        flag = " ⚠" if cell["below_base"] else ""
        lines.append(
            f"| {cell['source']} | {cell['kind']} | {'yes' if cell['seen_source'] else 'no'} | "
            f"{_pct(cell['baseline'])} | {_pct(cell['model'])} | "
            f"{cell['gain']:+.1%} ± {cell['gain_stderr']:.1%}{flag} |"
        )
    return "\n".join(lines + _geometry(results) + _comparative(results)) + "\n"


def _geometry(results: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Geometry on unseen templates",
        "",
        '1 − cos(normalize(f(A) − f(B)), f(c_AB)), lower is better; class prompts "An image in which one '
        'sees …", c_AB in the three unseen namings.',
        "",
        "| classes | pairs | baseline | model |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in results["geometry"].items():
        cells = [f"{row[who]['distance']:.3f} ± {row[who]['stderr']:.3f}" for who in WHO]
        lines.append(f"| {name} | {row['model']['pairs']} | {cells[0]} | {cells[1]} |")
    return lines


def _comparative(results: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Comparative prompting, both protocols (α = 0.8, each model's top-3 confusions)",
        "",
        "all classes: every image over every class (the bundled suite's protocol; in brackets, on the "
        "confused classes' images); subset: the authors' — only the confused classes' images and labels.",
        "",
        "| data set | who | confusions | all classes | (confused classes) | subset |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, block in results["comparative"].items():
        for who in WHO:
            entry = block[who]
            if "skipped" in entry:
                lines.append(f"| {name} | {who} | {entry['skipped']} | | | |")
                continue
            pairs = confusions_text(entry)
            every, subset = entry["all classes"], entry["subset"]
            lines.append(
                f"| {name} | {who} | {pairs} | {every['before']:.1%} → {every['after']:.1%} | "
                f"({every['confused_before']:.1%} → {every['confused_after']:.1%}) | "
                f"{subset['before']:.1%} → {subset['after']:.1%} |"
            )
    return lines


def write(results: dict[str, Any], folder: Path) -> Path:
    """report.json, report.md and difference.png (`report.write_report`)."""
    from training.evaluation.report import write_report

    return write_report(results, folder, render=markdown)
