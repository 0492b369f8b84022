"""Each metric on handmade embeddings whose right answer is known, then once end to end."""

import random

import pytest
import torch

from models import geometry
from training.evaluation.comparative import fashion_comparative, top_confusions
from training.evaluation.difference import TASKS, DifferencePair, evaluate_differences, mean_and_error
from training.evaluation.geometry_check import distance
from training.evaluation.report import headline, markdown
from training.evaluation.zero_shot import accuracy


def test_mean_and_standard_error():
    mean, error = mean_and_error([0.5, 0.7, 0.6])
    assert mean == pytest.approx(0.6)
    assert error == pytest.approx(0.1 / 3**0.5)
    assert mean_and_error([0.4]) == (0.4, 0.0)


def test_zero_shot_accuracy_counts_matches():
    assert accuracy(torch.tensor([0, 2, 1, 1]), [0, 2, 2, 1]) == pytest.approx(0.75)


def test_geometry_distance_is_zero_when_the_text_is_the_difference_and_two_when_reversed():
    a = torch.tensor([[1.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 1.0, 0.0]])
    assert distance(a, b, a - b) == pytest.approx(0.0, abs=1e-6)
    assert distance(a, b, b - a) == pytest.approx(2.0)
    assert distance(a, b, torch.tensor([[0.0, 0.0, 1.0]])) == pytest.approx(1.0)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_draws_distinct_image_pairs_with_texts(task):
    pairs = TASKS[task](random.Random(0), 4)
    assert len(pairs) == 4
    for pair in pairs:
        assert isinstance(pair, DifferencePair) and pair.text
        assert pair.first.tobytes() != pair.second.tobytes()


def test_difference_evaluation_gives_every_model_the_same_pairs(encoder):
    results = evaluate_differences({"a": encoder, "b": encoder}, seeds=[0, 1], pairs_per_seed=6,
                                   tasks={"size": TASKS["size"]})
    assert results["size"]["a"] == results["size"]["b"]
    assert 0.0 <= results["size"]["a"]["accuracy"] <= 1.0
    assert len(results["size"]["a"]["per_seed"]) == 2


def test_report_headline_and_markdown_name_every_section():
    row = {"accuracy": 0.75, "stderr": 0.05, "per_seed": [0.7, 0.8]}
    base_row = {"accuracy": 0.55, "stderr": 0.05, "per_seed": [0.5, 0.6]}
    probe = {"accuracy": 0.9, "chance": 0.25, "n": 10, "correct": 9}
    results = {
        "models": {"model": {"spec": "tiny", "fingerprint": "f" * 64},
                   "baseline": {"spec": "tiny-base", "fingerprint": "e" * 64}},
        "protocol": {"seeds": 2, "pairs_per_seed": 10},
        "difference": {"size": {"model": row, "baseline": base_row}},
        "zero_shot": {"model": {"colour": probe}, "baseline": {"colour": probe}},
        "geometry": {"model": 0.9, "baseline": 1.0},
        "comparative": {"model": {"skipped": "no data"}, "baseline": {"skipped": "no data"}},
    }
    top = headline(results)
    assert top["model"]["difference"] == pytest.approx(0.75)
    assert top["baseline"]["zero_shot"] == pytest.approx(0.9)
    text = markdown(results)
    for section in ("Difference classification", "Zero-shot", "Comparative prompting", "Geometry", "+20.0%"):
        assert section in text


def test_top_confusions_are_the_most_frequent_mistakes():
    targets = [0, 0, 0, 1, 1, 2, 2, 2]
    predictions = torch.tensor([1, 1, 0, 1, 2, 0, 0, 1])
    assert top_confusions(predictions, targets, k=2) == [(0, 1), (2, 0)]


def test_comparative_prompting_fixes_a_confusion_it_is_told_about():
    # class 1's prompt sits too close to class 0's images; the comparative text says how 0 and 1 differ
    images = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.1], [0.3, 1.0, 0.0], [0.4, 1.0, 0.0]])
    prototypes = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.45, 0.0]])
    before = geometry.similarity(images, prototypes).argmax(dim=1)
    assert before.tolist() == [0, 0, 1, 1]  # correct here; now move class 1 away from class 0
    comparative = torch.tensor([[1.0, -1.0, 0.0]])  # "0 is …, while 1 is …" ≈ f(0) − f(1)
    updated = geometry.comparative_update(prototypes, torch.tensor([[0, 1]]), comparative, alpha=0.5)
    assert updated[1, 1] > torch.nn.functional.normalize(prototypes, dim=-1)[1, 1]  # 1 moved away from 0
    torch.testing.assert_close(updated[0], prototypes[0])


def test_comparative_texts_name_both_classes_in_order():
    text = fashion_comparative("shirt", "pullover")
    assert text.startswith("A shirt has a collar") and "while a pullover" in text


def test_recall_at_k_on_a_known_similarity_matrix():
    from training.evaluation.retrieval import recall_at

    # query 0: right item best; query 1: right item third; query 2: right item last of 3
    similarity = torch.tensor([[0.9, 0.1, 0.2], [0.8, 0.5, 0.7], [0.9, 0.8, 0.1]])
    assert recall_at(similarity, ks=(1, 2, 3)) == pytest.approx({"R@1": 1 / 3, "R@2": 1 / 3, "R@3": 1.0})


def test_eval_shows_one_progress_bar_over_every_step(capsys):
    """`pcclip eval` runs for minutes: a bar counts each task × seed and each probe and metric."""
    from training.evaluation.probes import PROBE_COLORS, scene_probe
    from training.evaluation.report import evaluate

    labels = [f"{colour} shape" for colour in PROBE_COLORS]
    probe = scene_probe("scene colour (4)", "color", PROBE_COLORS, labels, n=8, seed=0, template="A photo of a {}")
    results = evaluate(
        "tiny-base", "tiny-base", seeds=2, pairs_per_seed=2, device="cpu", tasks={"size": TASKS["size"]}, probes=[probe]
    )
    bar = capsys.readouterr().err
    steps = 1 * 2 + 2 * (1 + 3)  # task × seeds, then per model: the probe, comparative, retrieval, geometry
    assert "pcclip eval" in bar and f"{steps}/{steps}" in bar and "baseline: geometry" in bar
    assert list(results["zero_shot"]["model"]) == [probe.name] and list(results["difference"]) == ["size"]
