"""POST /classify/difference."""

from __future__ import annotations

import json

import pytest
import torch
from apptools import b64, shape

from app.client import PcclipClient
from models import geometry

TEXTS = [
    "the first image is red while the second is blue",
    "the first shape is larger than the second",
    "the first is a circle and the second is a square",
]


def difference(client, pairs, texts=TEXTS):
    body = {"pairs": [{"first": b64(a), "second": b64(b)} for a, b in pairs], "texts": texts}
    response = client.post("/classify/difference", json=body)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_scores_are_cosines_with_the_image_difference(client, encoder):
    pairs = [(shape("red"), shape("blue", "square")), (shape("green", scale=0.9), shape("green", scale=0.3))]
    results = difference(client, pairs)
    images = encoder.encode_images([im for pair in pairs for im in pair])
    expected = geometry.difference_scores(images[0::2], images[1::2], encoder.encode_texts(TEXTS))
    got = torch.tensor([r["scores"] for r in results])
    assert torch.allclose(got, expected, atol=1e-5)
    for result, row in zip(results, expected, strict=True):
        best = row.abs().argmax().item()
        assert result["best"] == TEXTS[best]
        assert result["reversed"] == (row[best].item() < 0)


def test_swapping_a_pair_flips_the_signs_and_reversed(client):
    a, b = shape("red", "circle"), shape("blue", "triangle")
    (forward,) = difference(client, [(a, b)])
    (backward,) = difference(client, [(b, a)])
    assert forward["scores"] == pytest.approx([-s for s in backward["scores"]], abs=1e-5)
    assert forward["best"] == backward["best"]
    assert forward["reversed"] != backward["reversed"]


def test_a_pair_of_identical_images_gets_null_scores_with_the_reason_and_the_rest_are_answered(client):
    good = [(shape("red"), shape("blue", "square")), (shape("green", scale=0.9), shape("green", scale=0.3))]
    expected = difference(client, good)
    api = PcclipClient(http=client)
    results = api.classify_difference([good[0], (shape("red"), shape("red")), good[1]], TEXTS).results
    assert [r.model_dump() for r in (results[0], results[2])] == expected
    assert results[1].scores is None and results[1].best is None and results[1].reversed is None
    assert "same embedding" in results[1].reason
    assert all(r.reason is None for r in (results[0], results[2]))
    (alone,) = difference(client, [(shape("blue"), shape("blue"))])
    assert alone["scores"] is None and "same embedding" in alone["reason"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"pairs": []}, "pairs"),
        ({"texts": []}, "texts"),
        ({"texts": ["fine", ""]}, "empty text"),
        ({"pairs": [{"first": {"b64": "AAAA"}}]}, "second"),
        ({"pairs": [{"first": {"b64": "not base64!"}, "second": {"b64": "AAAA"}}]}, "pairs[0].first: invalid base64"),
    ],
)
def test_bad_difference_requests_are_422(client, change, expected):
    body = {"pairs": [{"first": b64(shape("red")), "second": b64(shape("blue"))}], "texts": TEXTS, **change}
    response = client.post("/classify/difference", json=body)
    assert response.status_code == 422
    assert expected in json.dumps(response.json()["detail"])
