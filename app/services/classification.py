"""Zero-shot classification with comparative prompting, and difference classification."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import torch

from app.engine import Engine
from app.errors import InvalidInput
from app.images import Source
from app.schemas import (
    ClassifyResponse,
    ClassifyResult,
    Comparative,
    DifferenceResponse,
    DifferenceResult,
    LabelScore,
)
from app.schemas.limits import limit
from app.services.embedding import named, rows
from models import geometry

# |ĝ(I1) − ĝ(I2)| below this: the pair's embeddings coincide and their difference has no direction.
MIN_DIFFERENCE = 1e-4
NO_DIFFERENCE = (
    "first and second have the same embedding (identical images?); their difference has no direction to score"
)


async def classify(
    embedder: Engine,
    *,
    images: Sequence[Source],
    labels: Sequence[str],
    template: str,
    comparatives: Sequence[Comparative] = (),
    alpha: float = 0.8,
    top_k: int | None = None,
) -> ClassifyResponse:
    # 1. Check inputs (each field's limits are the schemas'; these rules span fields)
    _check_labels(labels)
    _check_template(template, labels, limit("max_text_chars"))
    comparative_texts = [(f"comparatives[{k}].text", c.text) for k, c in enumerate(comparatives)]
    pairs = _comparative_pairs(labels, comparatives)  # (K, 2)
    prompts = [template.replace("{}", label) for label in labels]
    texts = named("prompts", prompts) + comparative_texts

    # 2. Encode prompts + comparative texts (one job, cached) and images (another job)
    text_vectors, image_vectors = await asyncio.gather(
        embedder.encode_texts(texts), embedder.encode_images(named("images", images))
    )  # (C + K, D), (N, D)
    prototypes, comparative_vectors = text_vectors[: len(labels)], text_vectors[len(labels) :]

    # 3. Comparative prompting (PAPER.md): move the second label of each pair
    if len(comparatives):
        prototypes = geometry.comparative_update(prototypes, pairs, comparative_vectors, alpha=alpha)

    # 4. Score every image against every prototype, best first
    scores = geometry.similarity(image_vectors, prototypes)  # (N, C)
    k = min(top_k or len(labels), len(labels))
    best_scores, best_labels = scores.topk(k, dim=1)  # (N, k), (N, k)
    return ClassifyResponse(
        results=[
            ClassifyResult(labels=[LabelScore(label=labels[j], score=s) for j, s in zip(idx, vals, strict=True)])
            for idx, vals in zip(best_labels.tolist(), rows(best_scores), strict=True)
        ]
    )


def _check_labels(labels: Sequence[str]) -> None:
    seen: set[str] = set()
    for i, label in enumerate(labels):
        if label in seen:
            raise InvalidInput(f"labels[{i}]: {label!r} appears more than once")
        seen.add(label)


def _check_template(template: str, labels: Sequence[str], max_chars: int) -> None:
    """Each prompt the template makes with a label fits the text limit: checked by arithmetic
    before any prompt is built (a long template × a long label is a huge string). A rule over
    two fields, so not a field's bound: the schemas bound the template and each label alone."""
    slots = template.count("{}")
    if not slots:
        raise InvalidInput('template: must contain "{}" where the label goes')
    for i, label in enumerate(labels):
        size = len(template) + slots * (len(label) - len("{}"))
        if size > max_chars:
            raise InvalidInput(
                f"prompts[{i}]: the template with labels[{i}] makes {size} characters; at most {max_chars}"
            )


def _comparative_pairs(labels: Sequence[str], comparatives: Sequence[Comparative]) -> torch.Tensor:
    """Label-index pairs (a_k, b_k) of the comparatives.  -> (K, 2) long"""
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({name for c in comparatives for name in (c.first, c.second)} - index.keys())
    if unknown:
        raise InvalidInput(
            f"comparatives: unknown labels {', '.join(map(repr, unknown))}; each first and second must be one of labels"
        )
    for k, c in enumerate(comparatives):
        if c.first == c.second:
            raise InvalidInput(f"comparatives[{k}]: first and second are the same label {c.first!r}")
    return torch.tensor([[index[c.first], index[c.second]] for c in comparatives], dtype=torch.long).reshape(-1, 2)


async def classify_difference(
    embedder: Engine, *, pairs: Sequence[tuple[Source, Source]], texts: Sequence[str]
) -> DifferenceResponse:
    # 1. Encode both images of every pair (one job) and the texts (the schema checked them)
    sources = [
        (f"pairs[{i}].{side}", image)
        for i, pair in enumerate(pairs)
        for side, image in zip(("first", "second"), pair, strict=True)
    ]
    image_vectors, text_vectors = await asyncio.gather(
        embedder.encode_images(sources), embedder.encode_texts(named("texts", texts))
    )  # (2P, D), (T, D)
    first, second = image_vectors[0::2], image_vectors[1::2]  # (P, D) each

    # 2. A pair whose embeddings coincide has no difference to score: it gets null scores and the reason
    gaps = (geometry.normalize(first) - geometry.normalize(second)).norm(dim=-1)  # (P,)
    scored = (gaps >= MIN_DIFFERENCE).nonzero().flatten()  # (S,)

    # 3. Score every text against every other pair's difference; the best is the largest |score|
    scores = geometry.difference_scores(first[scored], second[scored], text_vectors)  # (S, T)
    best = scores.abs().argmax(dim=1)  # (S,)
    results = [DifferenceResult(scores=None, best=None, reversed=None, reason=NO_DIFFERENCE)] * len(pairs)
    for i, row, b in zip(scored.tolist(), rows(scores), best.tolist(), strict=True):
        results[i] = DifferenceResult(scores=row, best=texts[b], reversed=row[b] < 0)
    return DifferenceResponse(results=results)
