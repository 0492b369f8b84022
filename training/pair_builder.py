"""`pcclip pairs`: sample pairs of captioned images, describe their differences, filter, save.

Images are written once as PNG files named by content hash under `<out folder>/images/`, so
the pairs file is self-contained and the embedding cache can key images by content. Reruns
append: pairs already in the file are skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from training.describers.base import Describer, PairInput
from training.pairs import PairRecord, read_pairs, sample_pairs, write_pairs
from training.sources.base import Sample

IMAGES_DIR = "images"
# A filter returns the cleaned text, or None and the reason it was dropped.
TextFilter = Callable[[str, PairInput], tuple[str | None, str]]


@dataclass
class PairStats:
    sampled: int = 0
    skipped_existing: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        reasons = ", ".join(f"{reason} {count}" for reason, count in self.dropped.most_common()) or "none"
        return (
            f"{self.kept} pairs kept of {self.sampled} sampled ({self.skipped_existing} already present); "
            f"dropped: {reasons}"
        )


def save_image(sample: Sample, folder: Path) -> str:
    """Write the sample's image as PNG named by its content hash; returns the relative path."""
    buffer = io.BytesIO()
    sample.image.save(buffer, format="PNG")
    data = buffer.getvalue()
    name = f"{hashlib.sha256(data).hexdigest()[:20]}.png"
    path = folder / IMAGES_DIR / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return f"{IMAGES_DIR}/{name}"


def build_pairs(
    samples: Sequence[Sample],
    describer: Describer,
    out: Path,
    *,
    budget: int,
    seed: int = 0,
    keep: TextFilter | None = None,
    batch_size: int = 32,
) -> PairStats:
    """Sample `budget` ordered pairs within each source, describe, filter and append to `out`."""
    return describe_pairs(_pairs_within_sources(samples, budget, seed), describer, out, keep=keep,
                          batch_size=batch_size)


def describe_pairs(
    candidates: Sequence[tuple[Sample, Sample]],
    describer: Describer,
    out: Path,
    *,
    keep: TextFilter | None = None,
    batch_size: int = 32,
) -> PairStats:
    """Describe given pairs, filter the texts and append the kept ones to `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r.first, r.second) for r in read_pairs(out)} if out.exists() else set()
    stats = PairStats(sampled=len(candidates))
    progress = tqdm(total=len(candidates), desc=f"describing ({describer.name})", unit="pair")
    for start in range(0, len(candidates), batch_size):
        chunk = candidates[start:start + batch_size]
        paths = [(save_image(a, out.parent), save_image(b, out.parent)) for a, b in chunk]
        todo = [(pair, path) for pair, path in zip(chunk, paths, strict=True) if path not in done]
        stats.skipped_existing += len(chunk) - len(todo)
        inputs = [_pair_input(a, b) for (a, b), _ in todo]
        texts = describer.describe(inputs) if inputs else []
        # Describers that can fail per pair (a server error, an empty answer) say why in
        # `last_reasons`; a None without a reason means the pair has no difference to state.
        failures = getattr(describer, "last_reasons", None) or [""] * len(texts)
        records = []
        for ((a, b), (first, second)), pair_input, text, failure in zip(todo, inputs, texts, failures, strict=True):
            if text is None:
                cleaned, reason = None, failure
            else:
                cleaned, reason = (text, "") if keep is None else keep(text, pair_input)
            if cleaned is None:
                stats.dropped[reason or "no difference"] += 1
                continue
            records.append(PairRecord(first=first, second=second, text=cleaned, captions=(a.caption, b.caption),
                                      attributes=(dict(a.attributes), dict(b.attributes)), describer=describer.name))
        stats.kept += write_pairs(out, records, append=True)
        progress.update(len(chunk))
    progress.close()
    return stats


def _pair_input(a: Sample, b: Sample) -> PairInput:
    return PairInput(
        captions=(a.caption, b.caption),
        attributes=(a.attributes, b.attributes),
        source=a.source if a.source == b.source else "",
    )


def _pairs_within_sources(samples: Sequence[Sample], budget: int, seed: int) -> list[tuple[Sample, Sample]]:
    """The budget split over sources by their share of samples; pairs never cross sources."""
    by_source: dict[str, list[Sample]] = {}
    for sample in samples:
        by_source.setdefault(sample.source, []).append(sample)
    chosen = []
    for offset, (_, members) in enumerate(sorted(by_source.items())):
        share = round(budget * len(members) / len(samples))
        chosen += [(members[i], members[j]) for i, j in sample_pairs(len(members), share, seed + offset)]
    return chosen
