"""POST /classify: zero-shot, comparative prompting, top_k; and /classify/upload."""

from __future__ import annotations

import json

import pytest
import torch
from apptools import b64, png, shape

from models import geometry

COLOURS = ["red", "green", "blue"]
TEMPLATE = "This is a photo of a {}"


def classify(client, **body):
    response = client.post("/classify", json=body)
    assert response.status_code == 200, response.text
    return response.json()["results"]


@pytest.mark.parametrize("kind", ["circle", "square"])
def test_drawn_shapes_get_their_colour(client, kind):
    images = [b64(shape(colour, kind)) for colour in COLOURS]
    results = classify(client, images=images, labels=["yellow", *COLOURS])
    assert [r["labels"][0]["label"] for r in results] == COLOURS


def test_scores_are_cosines_with_the_prompts_best_first(client, encoder):
    image = shape("red")
    labels = ["red", "blue", "a cat", "green"]
    (result,) = classify(client, images=[b64(image)], labels=labels, template="a {} picture")
    expected = geometry.similarity(
        encoder.encode_images([image]), encoder.encode_texts([f"a {x} picture" for x in labels])
    )[0]
    assert sorted(labels) == sorted(item["label"] for item in result["labels"])
    scores = [item["score"] for item in result["labels"]]
    assert scores == sorted(scores, reverse=True)
    for item in result["labels"]:
        assert item["score"] == pytest.approx(expected[labels.index(item["label"])].item(), abs=1e-5)


def test_top_k_keeps_the_best_k(client):
    images = [b64(shape("blue", "square"))]
    full = classify(client, images=images, labels=COLOURS + ["yellow"])[0]["labels"]
    top2 = classify(client, images=images, labels=COLOURS + ["yellow"], top_k=2)[0]["labels"]
    assert top2 == full[:2]
    assert (
        classify(client, images=images, labels=COLOURS, top_k=10)[0]["labels"]
        == classify(client, images=images, labels=COLOURS)[0]["labels"]
    )


def test_comparative_prompting_moves_only_the_second_label(client, encoder):
    image = shape("red", "triangle")
    labels = ["red", "green", "blue"]
    comparative = {"first": "red", "second": "green", "text": "the red one is warm, while the green one is cool"}
    plain = {i["label"]: i["score"] for i in classify(client, images=[b64(image)], labels=labels)[0]["labels"]}
    moved = {
        i["label"]: i["score"]
        for i in classify(client, images=[b64(image)], labels=labels, comparatives=[comparative], alpha=0.5)[0][
            "labels"
        ]
    }
    # Hand-computed: the PAPER.md update applied to the model's own embeddings.
    prototypes = encoder.encode_texts([TEMPLATE.format(x) for x in labels])
    c = encoder.encode_texts([comparative["text"]])
    updated = geometry.comparative_update(prototypes, torch.tensor([[0, 1]]), c, alpha=0.5)
    expected = geometry.similarity(encoder.encode_images([image]), updated)[0]
    for j, label in enumerate(labels):
        assert moved[label] == pytest.approx(expected[j].item(), abs=1e-5)
    assert moved["red"] == pytest.approx(plain["red"], abs=1e-6)
    assert moved["blue"] == pytest.approx(plain["blue"], abs=1e-6)
    assert abs(moved["green"] - plain["green"]) > 1e-3


def test_alpha_one_leaves_the_prototypes_alone(client):
    images = [b64(shape("green"))]
    comparatives = [{"first": "green", "second": "blue", "text": "green is grass, while blue is sky"}]
    plain = classify(client, images=images, labels=COLOURS)
    same = classify(client, images=images, labels=COLOURS, comparatives=comparatives, alpha=1.0)
    for a, b in zip(plain[0]["labels"], same[0]["labels"], strict=True):
        assert a["label"] == b["label"] and a["score"] == pytest.approx(b["score"], abs=1e-6)


def test_unknown_comparative_labels_are_named(client):
    response = client.post(
        "/classify",
        json={
            "images": [b64(shape("red"))],
            "labels": COLOURS,
            "comparatives": [
                {"first": "crab", "second": "red", "text": "x"},
                {"first": "blue", "second": "lobster", "text": "y"},
            ],
        },
    )
    assert response.status_code == 422
    assert "'crab'" in response.json()["detail"] and "'lobster'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"labels": []}, "labels"),
        ({"images": []}, "images"),
        ({"labels": ["red", "red"]}, "more than once"),
        ({"labels": ["red", " "]}, "empty text"),
        ({"template": "a photo"}, "must contain"),
        ({"top_k": 0}, "top_k"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"comparatives": [{"first": "red", "second": "red", "text": "x"}]}, "same label"),
        ({"comparatives": [{"first": "red", "second": "blue"}]}, "text"),
        ({"labelz": ["red"]}, "labelz"),
    ],
)
def test_bad_classify_requests_are_422_with_a_reason(client, change, expected):
    body = {"images": [b64(shape("red"))], "labels": COLOURS, **change}
    response = client.post("/classify", json=body)
    assert response.status_code == 422
    assert expected in json.dumps(response.json()["detail"])


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["alpha", "top_k"])
def test_non_finite_numbers_are_refused(client, number, field):
    body = json.dumps({"images": [b64(shape("red"))], "labels": COLOURS})[:-1] + f', "{field}": {number}}}'
    response = client.post("/classify", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", field]


def test_multipart_classify_matches_json(client):
    images = [shape("red"), shape("blue", "square")]
    comparatives = [{"first": "red", "second": "blue", "text": "red is warm, while blue is cold"}]
    via_json = classify(client, images=[b64(im) for im in images], labels=COLOURS, comparatives=comparatives, top_k=2)
    response = client.post(
        "/classify/upload",
        files=[("images", (f"{i}.png", png(im), "image/png")) for i, im in enumerate(images)],
        data={"labels": COLOURS, "comparatives": json.dumps(comparatives), "top_k": "2"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"] == via_json


def test_multipart_classify_reports_bad_comparatives(client):
    response = client.post(
        "/classify/upload",
        files=[("images", ("a.png", png(shape("red")), "image/png"))],
        data={"labels": COLOURS, "comparatives": '[{"first": "red"}]'},
    )
    assert response.status_code == 422
    assert "comparatives" in response.json()["detail"] and "second" in response.json()["detail"]


@pytest.mark.parametrize(
    ("labels", "template", "expected"),
    [
        # The probe's blow-up (5e11 characters if formatted; a multipart field holds at most 1 MiB)
        (["x" * 1_000_000], "{}" * 500_000, "labels[0]: 1000000 characters; at most 1000"),
        (["x" * 1000], "{}" * 8000, "template: 16000 characters; at most 1000"),
        (["red", "y" * 600], "{} or {}", "prompts[1]: the template with labels[1] makes 1204 characters; at most 1000"),
    ],
)
@pytest.mark.parametrize("route", ["/classify", "/classify/upload"])
def test_template_label_and_prompt_lengths_are_checked_before_formatting(client, route, labels, template, expected):
    if route == "/classify":
        response = client.post(route, json={"images": [b64(shape("red"))], "labels": labels, "template": template})
    else:
        files = [("images", ("a.png", png(shape("red")), "image/png"))]
        response = client.post(route, files=files, data={"labels": labels, "template": template})
    assert response.status_code == 422, response.text[:300]
    assert expected in response.text
