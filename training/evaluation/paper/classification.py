"""Zero-shot classification, comparative prompting, the geometry check and COCO retrieval.

- Zero-shot: "This is a photo of a {label}", argmax cosine over the data set's classes.
- Comparative prompting: each model's top-3 confusions (true a predicted as b) on that data
  set's test images get an LLM-written text c ("a …, while b …"); `geometry.comparative_update`
  moves b's prototype (α = 0.8, the authors' default). Two protocols, both the authors':
  "all classes" scores every image over every class (overall and on the confused classes'
  images); "subset" keeps only the images of classes in a pair and only those classes as
  candidate labels.
- Geometry (CIFAR-100): 1 − cos(normalize(f(A) − f(B)), f(c_AB)) over the confused pairs of both
  models, with their LLM texts; lower is better.
- Retrieval (COCO val2017): text→image R@k (a caption's own image) and image→text R@k (any of
  the image's captions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from models import geometry
from training.evaluation.comparative import top_confusions
from training.evaluation.difference import mean_and_error
from training.evaluation.geometry_check import distances
from training.evaluation.paper.datasets import LabeledImages
from training.evaluation.paper.embeddings import Embedder
from training.evaluation.paper.texts import DifferenceTexts
from training.evaluation.retrieval import KS
from training.evaluation.zero_shot import DEFAULT_TEMPLATE

ALPHA = 0.8
CONFUSIONS = 3


def binomial_error(p: float, n: int) -> float:
    return (p * (1 - p) / n) ** 0.5 if n else 0.0


def zero_shot(embedder: Embedder, data: LabeledImages) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """(accuracy ± s.e., image embeddings (N, D), class prototypes (C, D))."""
    images = embedder.images(data)
    prototypes = embedder.texts([DEFAULT_TEMPLATE.format(label) for label in data.classes])
    predictions = geometry.similarity(images, prototypes).argmax(dim=1)
    accuracy = (predictions == torch.as_tensor(data.labels)).float().mean().item()
    return {"accuracy": accuracy, "stderr": binomial_error(accuracy, len(data)), "n": len(data)}, images, prototypes


def comparative_protocols(images: torch.Tensor, prototypes: torch.Tensor, targets: torch.Tensor,
                          pairs: torch.Tensor, comparatives: torch.Tensor, alpha: float = ALPHA) -> dict[str, dict]:
    """Accuracy before/after the comparative update under both protocols.
    images (N, D), prototypes (C, D), targets (N,), pairs (K, 2) = (a_k, b_k), comparatives (K, D)."""
    updated = geometry.comparative_update(prototypes, pairs, comparatives, alpha)  # (C, D)
    classes = torch.unique(pairs.flatten())  # sorted
    confused = torch.isin(targets, classes)
    rows = {}
    for name, keep_images, candidates in (("all classes", slice(None), torch.arange(len(prototypes))),
                                          ("subset", confused, classes)):
        scored, truth = images[keep_images], targets[keep_images]
        before = candidates[geometry.similarity(scored, prototypes[candidates]).argmax(dim=1)]
        after = candidates[geometry.similarity(scored, updated[candidates]).argmax(dim=1)]
        n = len(truth)
        row = {"before": (before == truth).float().mean().item(), "after": (after == truth).float().mean().item(),
               "n": n}
        if name == "all classes":
            inside = confused[keep_images]
            row["confused_before"] = (before == truth)[inside].float().mean().item()
            row["confused_after"] = (after == truth)[inside].float().mean().item()
        row["gain"] = row["after"] - row["before"]
        errors = binomial_error(row["before"], n), binomial_error(row["after"], n)
        row["stderr"] = (errors[0] ** 2 + errors[1] ** 2) ** 0.5
        rows[name] = row
    return rows


def comparative(embedder: Embedder, data: LabeledImages, images: torch.Tensor, prototypes: torch.Tensor,
                texts: DifferenceTexts) -> dict[str, object]:
    """Comparative prompting on this model's own top confusions; skipped without LLM texts."""
    targets = torch.as_tensor(data.labels)
    predictions = geometry.similarity(images, prototypes).argmax(dim=1)
    confusions = top_confusions(predictions, data.labels, CONFUSIONS)
    if not confusions:
        return {"skipped": "no confusions: every test image is classified right"}
    written = texts.get([(data.classes[a], data.classes[b]) for a, b in confusions], source=data.name)
    kept = [(pair, text) for pair, text in zip(confusions, written, strict=True) if text]
    if not kept:
        return {"skipped": f"no LLM texts for the confused pairs in {texts.path}: pass --describer"}
    pairs = torch.tensor([pair for pair, _ in kept]).reshape(-1, 2)
    rows = comparative_protocols(images, prototypes, targets, pairs, embedder.texts([text for _, text in kept]))
    return {"alpha": ALPHA, "confusions": [{"true": data.classes[a], "predicted": data.classes[b], "text": text}
                                           for (a, b), text in kept], **rows}


def geometry_rows(data: LabeledImages, blocks: Sequence[Mapping]) -> list[tuple[str, str, str]]:
    """(prompt A, prompt B, c_AB) for every confused pair with a text in any model's comparative block."""
    rows = {}
    for block in blocks:
        for item in block.get("confusions", []):
            rows[(item["true"], item["predicted"])] = item["text"]
    return [(DEFAULT_TEMPLATE.format(a), DEFAULT_TEMPLATE.format(b), text) for (a, b), text in sorted(rows.items())]


def geometry_check(embedder: Embedder, rows: Sequence[tuple[str, str, str]]) -> dict[str, float]:
    a, b, c = (embedder.texts([row[i] for row in rows]) for i in range(3))
    values = distances(a, b, c).tolist()
    mean, error = mean_and_error(values)
    return {"distance": mean, "stderr": error, "pairs": len(values)}


def recall_with_owners(similarity: torch.Tensor, owner: torch.Tensor, ks: Sequence[int] = KS,
                       chunk: int = 1024) -> dict[str, float]:
    """similarity (M captions, N images); owner (M,) the image of each caption.
    text→image: rank of the caption's image; image→text: best rank of any of the image's captions."""
    right = similarity[torch.arange(len(owner)), owner]  # (M,)
    text_rank = (similarity > right[:, None]).sum(dim=1)  # (M,)
    by_image = similarity.T  # (N, M)
    caption_rank = torch.cat([(by_image[owner[start:start + chunk]] > right[start:start + chunk, None]).sum(dim=1)
                              for start in range(0, len(owner), chunk)])  # (M,) rank of caption m for its image
    image_rank = torch.full((by_image.shape[0],), by_image.shape[1], dtype=caption_rank.dtype)
    image_rank = image_rank.scatter_reduce(0, owner, caption_rank, reduce="amin")  # (N,)
    results = {f"text→image R@{k}": (text_rank < k).float().mean().item() for k in ks}
    results |= {f"image→text R@{k}": (image_rank < k).float().mean().item() for k in ks}
    return results


def retrieval(embedder: Embedder, data: LabeledImages) -> dict[str, float]:
    images = embedder.images(data)  # (N, D)
    captions = [caption for own in data.captions for caption in own]
    owner = torch.tensor([i for i, own in enumerate(data.captions) for _ in own])
    return recall_with_owners(geometry.similarity(embedder.texts(captions), images), owner)
