"""Finetuning throughput: the embedding cache vs running the image tower every step.

Prints one JSON line: pairs/s with cached image embeddings, pairs/s recomputing both image
embeddings each step (same model, same batches, same run), their ratio, and the share of a
cached step spent outside the text tower's forward and backward (loss, optimizer, data).

    .venv/bin/python bench/train.py --model tiny-base --steps 10 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from models import create_model, geometry
from training.describers.attributes import AttributeDescriber
from training.finetune import (
    FinetuneConfig,
    build_data,
    build_optimizer,
    encode_texts_train,
    freeze_all_but_text_blocks,
    pair_loss,
)
from training.pair_builder import build_pairs
from training.pairs import read_pairs
from training.sources.base import load_source, open_rgb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-base")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        samples = load_source("scenes", split="train", limit=200, seed=0)
        build_pairs(samples, AttributeDescriber(), folder / "pairs.jsonl", budget=args.batch_size * args.steps)
        encoder = create_model(args.model, device="cpu", precision="fp32")
        config = FinetuneConfig(pairs=str(folder / "pairs.jsonl"), base=args.model, batch_size=args.batch_size,
                                val_fraction=0.0)
        data, _ = build_data(encoder, config, folder / "cache")
        records = read_pairs(folder / "pairs.jsonl")
        images = {path: open_rgb(folder / path) for r in records for path in (r.first, r.second)}
        optimizer, _ = build_optimizer(freeze_all_but_text_blocks(encoder.model), config)
        batches = [torch.arange(i, i + args.batch_size) % len(data) for i in range(0, args.steps * args.batch_size,
                                                                                     args.batch_size)]

        def step(differences: torch.Tensor, tokens: torch.Tensor) -> float:
            """One optimizer step; returns the seconds spent in the text tower (forward + backward)."""
            started = time.perf_counter()
            texts = encode_texts_train(encoder, tokens)
            forward = time.perf_counter() - started
            loss = pair_loss(texts, differences, "infonce", 1.0)
            optimizer.zero_grad()
            started = time.perf_counter()
            loss.backward()
            backward = time.perf_counter() - started
            optimizer.step()
            return forward + backward

        def uncached_differences(batch: torch.Tensor) -> torch.Tensor:
            chosen = [records[int(i)] for i in batch]
            with torch.no_grad():
                firsts = encoder.encode_images([images[r.first] for r in chosen])
                seconds = encoder.encode_images([images[r.second] for r in chosen])
            return geometry.differences(firsts, seconds)

        step(data.differences[batches[0]], data.tokens[batches[0]])  # warm-up
        started = time.perf_counter()
        text_tower = sum(step(data.differences[b], data.tokens[b]) for b in batches)
        cached = time.perf_counter() - started
        started = time.perf_counter()
        for b in batches:
            step(uncached_differences(b), data.tokens[b])
        uncached = time.perf_counter() - started

    pairs = args.steps * args.batch_size
    print(json.dumps({
        "model": args.model,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "cached_pairs_per_s": round(pairs / cached, 1),
        "uncached_pairs_per_s": round(pairs / uncached, 1),
        "speedup": round(uncached / cached, 2),
        "outside_text_tower_share": round(1 - text_tower / cached, 3),
    }))


if __name__ == "__main__":
    main()
