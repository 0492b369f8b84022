"""The paper's SDXL comparison as one workflow: the same request and seeds through each arm
(PC-CLIP in the text_encoder slot, optionally the pipeline's own encoders), every image scored
against a target text by one judge (`compare_arms`), and a folder of PNGs plus `generate.json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from models.encoder import Encoder
from models.generation.clip_score import ScoreSummary, compare_arms
from models.generation.pipeline import GenerationRequest, GenerationResult, SDXLBridge

REPORT_FILE = "generate.json"


@dataclass(frozen=True)
class ArmImage:
    arm: str
    result: GenerationResult

    @property
    def file(self) -> str:
        return f"{self.arm}-seed{self.result.seed}.png"


@dataclass(frozen=True)
class Comparison:
    request: GenerationRequest  # what every arm ran (the first seed)
    images: list[ArmImage]  # arm by arm, seed by seed
    target: str | None
    scores: dict[str, ScoreSummary]  # arm → CLIP score against `target`; empty without one

    def score_parts(self) -> list[str]:
        """Each arm's score for a summary line, e.g. "CLIP score pcclip 0.2712 ± 0.0031"."""
        return [
            f"CLIP score {arm} {s.mean:.4f}" + (f" ± {s.sem:.4f}" if s.n > 1 else "") for arm, s in self.scores.items()
        ]


def build_arms(pipe: Any, encoder: Encoder, *, compare_base: bool) -> dict[str, SDXLBridge]:
    """The arms by name: "pcclip" puts `encoder` in the text_encoder slot where it fits; with
    `compare_base` also "base", the pipeline's own encoders. Neither changes `pipe`."""
    arms = {"pcclip": SDXLBridge(pipe, encoder)}
    if compare_base:
        arms["base"] = SDXLBridge(pipe, None)
    return arms


def run_comparison(
    arms: Mapping[str, SDXLBridge],
    request: GenerationRequest,
    *,
    count: int,
    target: str | None = None,
    judge: Encoder | None = None,
    on_step: Callable[[], object] | None = None,
) -> Comparison:
    """`count` images per arm with seeds `request.seed` … `request.seed + count − 1` (the same in
    every arm), and with a `target` each arm's CLIP score by `judge`. `on_step` runs after every
    denoising step (arms × count × steps in all)."""
    if target is not None and judge is None:
        raise ValueError("a target needs a judge: the Encoder that scores the images against it")

    def step(done: int, total: int) -> None:
        if on_step is not None:
            on_step()

    # 1. Generate, arm by arm, seed by seed
    images = []
    for arm, bridge in arms.items():
        for index in range(count):
            result = bridge.generate(replace(request, seed=request.seed + index), on_step=step)
            images.append(ArmImage(arm, result))

    # 2. Score every arm with the same judge against the same target
    scores: dict[str, ScoreSummary] = {}
    if target is not None and judge is not None:
        by_arm = {arm: [i.result.image for i in images if i.arm == arm] for arm in arms}
        scores = compare_arms(judge, by_arm, target)
    return Comparison(request=request, images=images, target=target, scores=scores)


def write_comparison(comparison: Comparison, out: Path, header: Mapping[str, Any]) -> Path:
    """Each image as `ARM-seedN.png` and `generate.json`: the prompt and edits, `header` (e.g. the
    models used), one record per image (its conditioning report and CLIP score) and each arm's
    score summary."""
    out.mkdir(parents=True, exist_ok=True)
    per_image = {arm: iter(summary.scores) for arm, summary in comparison.scores.items()}
    records = []
    for image in comparison.images:
        image.result.image.save(out / image.file)
        record: dict[str, Any] = {
            "arm": image.arm, "seed": image.result.seed, "file": image.file, "report": image.result.report.to_dict(),
        }
        if image.arm in per_image:
            record["clip_score"] = next(per_image[image.arm])
        records.append(record)
    scores = {
        arm: {"mean": s.mean, "sem": s.sem if s.n > 1 else None, "n": s.n} for arm, s in comparison.scores.items()
    }
    request = comparison.request
    report = {
        "prompt": request.prompt,
        "edits": [{"text": edit.text, "weight": edit.weight} for edit in request.edits],
        **header,
        "target": comparison.target,
        "images": records,
        "scores": scores,
    }
    path = out / REPORT_FILE
    path.write_text(json.dumps(report, indent=2))
    return path
