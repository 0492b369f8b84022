"""`build_pairs` end to end with the attributes describer on drawn scenes: images and JSONL
written, reruns resume instead of repeating, and the counts add up."""

from __future__ import annotations

from PIL import Image

from training.describers.attributes import AttributeDescriber
from training.describers.base import PairInput
from training.pair_builder import build_pairs
from training.pairs import read_pairs
from training.sources import load_source
from training.text_filter import make_filter, reversed_direction


def test_build_pairs_writes_images_and_jsonl_and_resumes(tmp_path):
    samples = load_source("scenes", limit=8, seed=2)
    out = tmp_path / "pairs" / "pairs.jsonl"
    keep = make_filter(min_chars=0)

    first = build_pairs(samples, AttributeDescriber(seed=0), out, budget=20, seed=1, keep=keep)

    records = read_pairs(out)
    assert first.sampled == 20 and first.skipped_existing == 0
    assert first.kept == len(records) > 0
    assert first.kept + sum(first.dropped.values()) == first.sampled
    assert set(first.dropped) <= {"no difference"}  # attribute texts are never reversed
    assert len({(r.first, r.second) for r in records}) == len(records)
    by_caption = {s.caption: s for s in samples}
    assert len(by_caption) == len(samples)
    for record in records:
        assert record.describer == "attributes" and record.text.endswith(".")
        assert record.first != record.second
        for path, caption, labels in zip(record.paths(out.parent), record.captions, record.attributes, strict=True):
            with Image.open(path) as image:
                assert image.size == by_caption[caption].image.size
            assert labels == dict(by_caption[caption].attributes)
        assert not reversed_direction(record.text, PairInput(record.captions, record.attributes))
    images = list((out.parent / "images").glob("*.png"))
    assert len(images) == len({p for r in records for p in (r.first, r.second)})

    again = build_pairs(samples, AttributeDescriber(seed=0), out, budget=20, seed=1, keep=keep)

    assert read_pairs(out) == records  # nothing appended
    assert again.kept == 0 and again.skipped_existing == first.kept
    assert again.skipped_existing + sum(again.dropped.values()) == again.sampled == 20
    assert again.summary().startswith(f"0 pairs kept of 20 sampled ({first.kept} already present)")


def test_a_larger_budget_on_rerun_adds_only_new_pairs(tmp_path):
    samples = load_source("scenes", limit=8, seed=2)
    out = tmp_path / "pairs.jsonl"
    small = build_pairs(samples, AttributeDescriber(seed=0), out, budget=10, seed=1)
    large = build_pairs(samples, AttributeDescriber(seed=0), out, budget=30, seed=1)
    records = read_pairs(out)
    assert len(records) == small.kept + large.kept
    assert len({(r.first, r.second) for r in records}) == len(records)
    assert large.skipped_existing + large.kept + sum(large.dropped.values()) == large.sampled == 30


def test_the_filter_drops_short_texts_with_a_counted_reason(tmp_path):
    samples = load_source("scenes", limit=8, seed=2)
    stats = build_pairs(samples, AttributeDescriber(seed=0), tmp_path / "pairs.jsonl", budget=20, seed=1,
                        keep=make_filter(min_chars=10_000))
    assert stats.kept == 0
    assert stats.dropped["too short"] + stats.dropped["no difference"] == 20 and stats.dropped["too short"] > 0
