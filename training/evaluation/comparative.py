"""Comparative prompting (PAPER.md): prior knowledge about confusable classes, as text.

The model's top confusions (true class a predicted as b) are found on held-out images; for
each, a comparative text "a …, while b …" updates b's prototype with
`models.geometry.comparative_update`. Reported: accuracy on the images of the confused
classes and overall, before and after, over a sweep of α.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import torch

from models import geometry
from models.encoder import Encoder
from training.evaluation.zero_shot import Probe

ALPHAS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)

# What tells each Fashion-MNIST class apart, written once per class; a comparative text for
# any pair joins two of them ("A shirt has …, while a pullover has …").
FASHION_TRAITS = {
    "t-shirt/top": "a t-shirt has short sleeves, no collar and no buttons",
    "trouser": "a pair of trousers has two long separate legs",
    "pullover": "a pullover has long sleeves, no buttons and a plain knitted front",
    "dress": "a dress is one long piece that widens below the waist",
    "coat": "a coat is long, heavy and opens down the front with buttons or a zip",
    "sandal": "a sandal is an open shoe made of thin straps",
    "shirt": "a shirt has a collar and a row of buttons down the front",
    "sneaker": "a sneaker is a low closed sports shoe with laces",
    "bag": "a bag is a box-like holder with handles or a strap",
    "ankle boot": "an ankle boot is a closed shoe that covers the ankle",
}


def traits_comparative(traits: Mapping[str, str], first: str, second: str) -> str:
    """The comparative text for a confused pair from one trait per class: "A shirt has …, while a pullover has …"."""
    text = f"{traits[first]}, while {traits[second]}."
    return text[0].upper() + text[1:]


def fashion_comparative(first: str, second: str) -> str:
    return traits_comparative(FASHION_TRAITS, first, second)


def top_confusions(predictions: torch.Tensor, targets: Sequence[int], k: int = 3) -> list[tuple[int, int]]:
    """The k most frequent (true, predicted) pairs with true ≠ predicted."""
    counts = Counter((t, int(p)) for t, p in zip(targets, predictions.tolist(), strict=True) if t != int(p))
    return [pair for pair, _ in counts.most_common(k)]


def evaluate_comparative(
    encoder: Encoder, probe: Probe, classes: Sequence[str], comparative: Callable[[str, str], str], k: int = 3
) -> dict[str, object]:
    """Confusions, the texts used, and accuracy (confused classes / overall) for each α."""
    images = encoder.encode_images(probe.images)  # (N, D)
    prototypes = encoder.encode_texts(probe.prompts)  # (C, D)
    targets = torch.as_tensor(probe.targets)
    before = geometry.similarity(images, prototypes).argmax(dim=1)
    confusions = top_confusions(before, probe.targets, k)
    texts = [comparative(classes[a], classes[b]) for a, b in confusions]
    comparatives = encoder.encode_texts(texts)
    confused = torch.zeros_like(targets, dtype=torch.bool)
    for a, b in confusions:
        confused |= (targets == a) | (targets == b)
    sweep = []
    for alpha in ALPHAS:
        updated = geometry.comparative_update(prototypes, torch.tensor(confusions).reshape(-1, 2), comparatives, alpha)
        predicted = geometry.similarity(images, updated).argmax(dim=1)
        correct = predicted == targets
        sweep.append({"alpha": alpha, "confused": correct[confused].float().mean().item(),
                      "overall": correct.float().mean().item()})
    return {
        "probe": probe.name,
        "confusions": [{"true": classes[a], "predicted": classes[b], "text": text}
                       for (a, b), text in zip(confusions, texts, strict=True)],
        "sweep": sweep,
    }
