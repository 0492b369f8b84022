"""The paper suite's tasks on cases whose answer is known, then `pcclip eval --suite paper` end to end."""

from __future__ import annotations

import json
import random

import pytest
import torch
from chat_server import QUESTION, ChatServer
from paper_fixtures import write_all, write_awa2, write_cifar100, write_coco, write_cub
from typer.testing import CliRunner

from cli.main import cli, register
from training.describers.openai import OpenAIDescriber
from training.evaluation.paper import table
from training.evaluation.paper.animals import load_awa2, non_visual_predicates
from training.evaluation.paper.cifar import load_cifar100
from training.evaluation.paper.classification import comparative_protocols, recall_with_owners
from training.evaluation.paper.difference import (
    SIZE_TEXTS,
    TASKS,
    Scored,
    attribute_text,
    awa2_task,
    cifar_size_task,
    cub_task,
    group_pairs,
    pair_scores,
)
from training.evaluation.paper.embeddings import Embedder
from training.evaluation.paper.suite import limit
from training.evaluation.paper.texts import DifferenceTexts
from training.evaluation.retrieval import recall_at


def long_answers(body: dict, attempt: int):
    """An LLM that restates the question as a difference long enough for the paper's filter."""
    first, second = QUESTION.fullmatch(body["messages"][-1]["content"]).groups()
    text = f"A: The first image shows {first} in plain detail, while the second image shows {second} instead."
    return 200, {}, {"choices": [{"message": {"role": "assistant", "content": text}}]}, 0.0


@pytest.fixture
def llm():
    server = ChatServer()
    server.behaviour = long_answers
    yield server
    server.close()


def test_two_group_pairs_are_every_cross_pair_in_both_orders_with_the_text_of_that_order():
    labels = [15, 36, 42, 0]  # camel (large), hamster (small), leopard (large), apple (neither)
    pairs = group_pairs(labels, [0, 1, 2, 3], {"large": [15, 42], "small": [36]}, SIZE_TEXTS)
    large_first, small_first = SIZE_TEXTS[("large", "small")], SIZE_TEXTS[("small", "large")]
    assert pairs == [Scored(0, 1, large_first), Scored(1, 0, small_first),
                     Scored(1, 2, small_first), Scored(2, 1, large_first)]


def test_cifar_size_task_pairs_only_large_with_small_animals(tmp_path):
    write_cifar100(tmp_path, [15, 36, 42, 65, 0, 97, 74, 80] * 2)
    data, build = cifar_size_task(tmp_path, DifferenceTexts(tmp_path / "t.jsonl"), 100)
    pairs = build(random.Random(0))
    large = {15, 42, 43, 97}
    assert len(pairs) == 2 * 8 * 6  # 8 large × 6 small sampled images (apple is in neither group), both orders
    for pair in pairs:
        first_large = data.labels[pair.first] in large
        assert first_large != (data.labels[pair.second] in large)
        assert pair.text == SIZE_TEXTS[("large", "small") if first_large else ("small", "large")]


def test_awa2_texts_list_visual_attributes_only_one_class_has():
    animals_matrix = torch.tensor([[1, 1, 0, 1, 0], [1, 0, 1, 0, 1]], dtype=torch.bool).numpy()
    names = ("brown", "hooves", "claws", "smelly", "fish")
    text = attribute_text(animals_matrix, names, 0, 1, frozenset({"smelly", "fish"}))
    assert text == "The first image has attributes of hooves, while the second image has attributes of claws"
    assert attribute_text(animals_matrix, names, 0, 0) is None


def test_awa2_task_pairs_different_classes_in_both_orders(tmp_path):
    write_awa2(tmp_path, per_class=3)
    animals = load_awa2(tmp_path)
    data, build = awa2_task(tmp_path, DifferenceTexts(tmp_path / "t.jsonl"), 100)
    pairs = build(random.Random(0))
    assert len(pairs) == 2 * 27  # 9 test images, 3 per class: 27 cross-class pairs
    for pair in pairs:
        a, b = data.labels[pair.first], data.labels[pair.second]
        assert a != b
        assert pair.text == attribute_text(animals.matrix, animals.predicates, a, b, non_visual_predicates())
    assert "smelly" not in " ".join(p.text for p in pairs) and "hooves" in pairs[0].text + pairs[1].text


def test_cub_task_asks_the_llm_once_per_ordered_pair_and_reads_the_cache_back(tmp_path, llm):
    write_cub(tmp_path)
    texts = DifferenceTexts(tmp_path / "texts.jsonl", OpenAIDescriber(llm.base_url, "llama"))
    data, build = cub_task(tmp_path, texts, 100)
    pairs = build(random.Random(3))
    assert len(pairs) == 2 * 12  # 6 test birds in 3 classes: 12 cross-class pairs, both orders
    assert all(data.labels[p.first] != data.labels[p.second] for p in pairs)
    first = pairs[0]
    assert first.text.startswith(f"The first image shows {data.captions[first.first][0][:20]}") or \
        "this bird number" in first.text
    assert len(llm.requests) == 24
    again = cub_task(tmp_path, DifferenceTexts(tmp_path / "texts.jsonl"), 100)[1](random.Random(3))
    assert again == pairs and len(llm.requests) == 24  # no describer: the cached texts, no request


def test_pair_scores_are_positive_along_the_difference_and_flip_with_the_order():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    texts = torch.tensor([[1.0, -1.0]])  # "the first is more like axis 0 than the second"
    pairs = [Scored(10, 20, "t"), Scored(20, 10, "t")]
    scores = pair_scores(pairs, images, {10: 0, 20: 1}, texts, {"t": 0})
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(-1.0)


def test_comparative_protocols_fix_a_told_confusion_and_the_subset_drops_other_classes():
    # class 1's prototype leans to class 0's images; the text for (0 → 1) says how 0 differs from 1
    prototypes = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.4, 0.0], [0.0, 0.0, 1.0]])
    images = torch.tensor([[1.0, 0.1, 0.0], [0.2, 1.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.1, 1.0]])
    targets = torch.tensor([0, 1, 1, 2])
    comparatives = torch.tensor([[1.0, -1.0, 0.0]])  # f("0 …, while 1 …") ≈ t0 − t1
    rows = comparative_protocols(images, prototypes, targets, torch.tensor([[0, 1]]), comparatives, alpha=0.5)
    assert rows["subset"]["n"] == 3  # the class-2 image is not scored
    assert rows["subset"]["after"] >= rows["subset"]["before"]
    assert rows["all classes"]["n"] == 4 and rows["all classes"]["gain"] == pytest.approx(
        rows["all classes"]["after"] - rows["all classes"]["before"])


def test_recall_with_one_caption_per_image_equals_recall_at_and_counts_any_own_caption():
    similarity = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.1, 0.8], [0.4, 0.5, 0.6]])
    one_each = recall_with_owners(similarity, torch.tensor([0, 1, 2]), ks=(1, 2))
    ours = recall_at(similarity, ks=(1, 2))
    assert [one_each[f"text→image R@{k}"] for k in (1, 2)] == [ours["R@1"], ours["R@2"]]
    assert [one_each[f"image→text R@{k}"] for k in (1, 2)] == list(recall_at(similarity.T, ks=(1, 2)).values())
    two_captions = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.7, 0.3]])  # captions 0, 1 of image 0; 2 of image 1
    result = recall_with_owners(two_captions, torch.tensor([0, 0, 1]), ks=(1,))
    assert result == {"text→image R@1": pytest.approx(1 / 3), "image→text R@1": 0.5}


def test_reproduced_means_the_paper_figure_is_within_two_standard_errors():
    assert table.reproduced(0.66, 0.01, 0.676) and not table.reproduced(0.60, 0.01, 0.676)
    assert table.reproduced(0.56, 0.02, [0.58, 0.67]) and not table.reproduced(0.50, 0.02, [0.58, 0.67])
    results = {"difference": {"CIFAR-100 size": {"model": {"accuracy": 0.67, "stderr": 0.01},
                                                 "baseline": {"accuracy": 0.70, "stderr": 0.01}}}}
    rows = {(r["item"], r["who"]): r for r in table.compare(results)}
    assert rows[("CIFAR-100 size", "model")]["reproduced"] is True
    assert rows[("CIFAR-100 size", "baseline")]["reproduced"] is False
    assert rows[("CUB", "model")]["reproduced"] is None and rows[("CUB", "model")]["paper"] == 0.801


def test_limit_is_a_seeded_subset(tmp_path):
    write_cifar100(tmp_path, list(range(20)))
    data = load_cifar100(tmp_path)
    assert limit(data, 0) is data and limit(data, 5).labels == limit(data, 5).labels and len(limit(data, 5)) == 5


def test_pcclip_eval_suite_paper_runs_end_to_end_and_writes_the_paper_column(tmp_path, llm):
    register()
    data, report, cache = tmp_path / "data", tmp_path / "report", tmp_path / "cache"
    write_all(data)
    arguments = ["eval", "--suite", "paper", "--data-root", str(data), "--model", "tiny", "--baseline", "tiny-base",
                 "--report", str(report), "--cache-dir", str(cache), "--texts", str(tmp_path / "texts.jsonl"),
                 "--seeds", "1", "--describer", "openai", "--base-url", llm.base_url, "--llm-model", "llama"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    assert "paper figures reproduced" in result.output
    results = json.loads((report / "report.json").read_text())
    assert not results["skipped"], results["skipped"]
    assert set(results["difference"]) == set(TASKS)
    assert set(results["zero_shot"]) == {"CIFAR-100", "CUB", "EuroSAT", "Flowers-102", "SUN397"}
    assert set(results["comparative"]["CIFAR-100"]["model"]) >= {"all classes", "subset", "confusions"}
    assert results["geometry"]["CIFAR-100"]["model"]["pairs"] >= 1
    assert set(results["retrieval"]["COCO val2017"]["model"]) == {f"{d} R@{k}" for d in ("text→image", "image→text")
                                                                  for k in (1, 5, 10)}
    paper = {(row["item"], row["who"]): row for row in results["paper"]}
    assert paper[("CUB (LLM-written)", "model")]["paper"] == 0.676
    assert paper[("CUB (LLM-written)", "model")]["reproduced"] in (True, False)
    markdown = (report / "report.md").read_text()
    assert "## Beside the paper" in markdown and "| difference | CIFAR-100 size | model | 67.4% |" in markdown
    assert (report / "difference.png").stat().st_size > 0
    # tiny is a PC-CLIP checkpoint of tiny-base: one image tower, one image cache for both
    assert len([folder for folder in cache.iterdir() if folder.is_dir()]) == 1
    lines = (tmp_path / "texts.jsonl").read_text().splitlines()
    assert len(lines) == len(llm.requests) and all(json.loads(line)["text"] for line in lines)


def test_a_model_sharing_its_base_image_tower_reuses_the_cached_image_embeddings(tmp_path):
    write_cifar100(tmp_path, [15, 36, 42])
    data = load_cifar100(tmp_path)
    base = Embedder("tiny-base", device="cpu", precision="auto", cache_dir=tmp_path / "c", batch_size=8)
    first = base.images(data)
    model = Embedder("tiny", device="cpu", precision="auto", cache_dir=tmp_path / "c", batch_size=8)
    assert model.cache.folder == base.cache.folder and len(model.cache) == 3  # read from disk, nothing encoded
    assert torch.equal(model.images(data), first)
    assert model.encoder.fingerprint != base.encoder.fingerprint



def test_embedders_of_one_run_built_together_encode_an_image_once(tmp_path):
    """As `evaluate_paper` builds them: both before either encodes; the second sees the first's rows."""
    write_cifar100(tmp_path, [15, 36, 42])
    data = load_cifar100(tmp_path)
    caches: dict = {}
    base, model = (
        Embedder(spec, device="cpu", precision="auto", cache_dir=tmp_path / "c", batch_size=8, caches=caches)
        for spec in ("tiny-base", "tiny")
    )
    first = base.images(data)
    assert len(model.cache) == 3 and len(caches) == 1
    assert torch.equal(model.images(data), first)

def test_missing_data_sets_are_skipped_with_one_line_each(tmp_path):
    register()
    write_coco(tmp_path / "data")
    result = CliRunner().invoke(cli, ["eval", "--suite", "paper", "--data-root", str(tmp_path / "data"),
                                      "--report", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
                                      "--texts", str(tmp_path / "t.jsonl"), "--seeds", "1"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "r" / "report.json").read_text())
    assert set(results["skipped"]) == {*TASKS, "CIFAR-100", "CUB", "EuroSAT", "Flowers-102", "SUN397"}
    assert results["skipped"]["AwA2 attributes"].startswith("AwA2: expected classes.txt")
    assert "cvml.ista.ac.at" in results["skipped"]["AwA2 attributes"]
    assert "skipped CUB-200-2011: expected" in result.output
    assert set(results["retrieval"]) == {"COCO val2017"}
    assert "not run" in (tmp_path / "r" / "report.md").read_text()


def test_the_paper_suite_needs_an_existing_data_root(tmp_path):
    register()
    result = CliRunner().invoke(cli, ["eval", "--suite", "paper", "--report", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--data-root" in result.output
