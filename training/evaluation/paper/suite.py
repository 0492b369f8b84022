"""`pcclip eval --suite paper`: every task of the paper for a model and its baseline.

Reads top to bottom: load both models → difference tasks → per classification data set
zero-shot and comparative prompting → geometry on CIFAR-100 → COCO retrieval → the table
beside the paper. A data set that is not on disk is skipped with one line saying which files
were expected where and where to get them; everything else still runs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.describers.base import Describer
from training.embedding_cache import EmbeddingCache
from training.evaluation.paper import classification, table
from training.evaluation.paper.birds import load_cub
from training.evaluation.paper.cifar import load_cifar100
from training.evaluation.paper.coco import load_coco_captions
from training.evaluation.paper.datasets import LabeledImages, MissingDataset
from training.evaluation.paper.difference import TASKS, run_task
from training.evaluation.paper.embeddings import Embedder
from training.evaluation.paper.flowers import load_flowers102
from training.evaluation.paper.folders import load_eurosat, load_sun397
from training.evaluation.paper.texts import DifferenceTexts

CLASSIFICATION: dict[str, Callable[[Path], LabeledImages]] = {
    "CIFAR-100": lambda root: load_cifar100(root, "test"),
    "CUB": lambda root: load_cub(root, "test"),
    "EuroSAT": lambda root: load_eurosat(root, "test"),
    "Flowers-102": lambda root: load_flowers102(root, "test"),
    "SUN397": lambda root: load_sun397(root, "test"),
}
GEOMETRY_DATASET = "CIFAR-100"


@dataclass(frozen=True)
class SuiteConfig:
    data_root: Path
    cache_dir: Path  # image embeddings
    texts: Path  # LLM-written difference texts (JSON Lines)
    seeds: int = 5  # paper: 5
    images_per_seed: int = 100  # paper: 100 sampled test images per seed
    max_images: int = 0  # classification/retrieval images per data set (0 = the whole test split)
    device: str = "auto"
    precision: str = "auto"  # fp16/bf16 autocast on CUDA; fp32 on CPU
    batch_size: int = 256


def limit(data: LabeledImages, max_images: int, seed: int = 0) -> LabeledImages:
    """A seeded random `max_images` of `data` (all of it when 0 or more than it has)."""
    if not max_images or len(data) <= max_images:
        return data
    return data.subset(sorted(random.Random(seed).sample(range(len(data)), max_images)))


def evaluate_paper(model: str, baseline: str, config: SuiteConfig, describer: Describer | None = None,
                   progress: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    caches: dict[str, EmbeddingCache] = {}
    embedders = {who: Embedder(spec, device=config.device, precision=config.precision, cache_dir=config.cache_dir,
                               batch_size=config.batch_size, caches=caches)
                 for who, spec in (("baseline", baseline), ("model", model))}
    texts = DifferenceTexts(config.texts, describer)
    results: dict[str, Any] = {
        "suite": "paper",
        "models": {who: embedder.info() for who, embedder in embedders.items()},
        "protocol": {"data_root": str(config.data_root), "seeds": config.seeds,
                     "images_per_seed": config.images_per_seed, "max_images": config.max_images},
        "skipped": {}, "difference": {}, "zero_shot": {}, "comparative": {}, "geometry": {}, "retrieval": {},
    }

    def skip(name: str, error: MissingDataset) -> None:
        results["skipped"][name] = str(error)
        progress(f"skipped {error}")

    for name, task in TASKS.items():
        progress(f"difference: {name}")
        try:
            data, build = task(config.data_root, texts, config.images_per_seed)
            results["difference"][name] = run_task(name, data, build, embedders, range(config.seeds))
        except MissingDataset as error:
            skip(name, error)
    for name, load in CLASSIFICATION.items():
        progress(f"zero-shot and comparative prompting: {name}")
        try:
            data = limit(load(config.data_root), config.max_images)
        except MissingDataset as error:
            skip(name, error)
            continue
        _classify(name, data, embedders, texts, results)
    progress("retrieval: COCO captions")
    try:
        coco = limit(load_coco_captions(config.data_root), config.max_images)
        results["retrieval"][coco.name] = {who: classification.retrieval(e, coco) for who, e in embedders.items()}
    except MissingDataset as error:
        skip("COCO captions", error)
    results["paper"] = table.compare(results)
    return results


def _classify(name: str, data: LabeledImages, embedders: dict[str, Embedder], texts: DifferenceTexts,
              results: dict[str, Any]) -> None:
    """Zero-shot and comparative prompting on one data set, and the geometry check on CIFAR-100."""
    results["zero_shot"][name], results["comparative"][name] = {}, {}
    for who, embedder in embedders.items():
        row, images, prototypes = classification.zero_shot(embedder, data)
        results["zero_shot"][name][who] = row
        results["comparative"][name][who] = classification.comparative(embedder, data, images, prototypes, texts)
    if name == GEOMETRY_DATASET:
        rows = classification.geometry_rows(data, list(results["comparative"][name].values()))
        if rows:
            results["geometry"][name] = {who: classification.geometry_check(e, rows) for who, e in embedders.items()}
        else:
            results["skipped"]["geometry"] = f"geometry: no LLM texts for {name}'s confused pairs in {texts.path}"


def write(results: dict[str, Any], folder: Path) -> Path:
    from training.evaluation.report import write_report

    return write_report(results, folder, render=table.markdown, reported=table.reported_differences())


def headline(results: dict[str, Any]) -> str:
    rows = results["paper"]
    ran = [row for row in rows if row["reproduced"] is not None]
    return (f"{sum(row['reproduced'] for row in ran)} of {len(ran)} paper figures reproduced "
            f"({len(rows) - len(ran)} not run); {len(results['skipped'])} data sets or tasks skipped")
