"""POST /rank."""

from __future__ import annotations

import pytest
import torch
from apptools import b64, shape

from models import geometry


def test_images_come_in_order_of_projection_on_the_text(client, encoder):
    images = [shape("blue", scale=s) for s in (0.2, 0.9, 0.5)] + [shape("red", "square"), shape("green", "triangle")]
    text = "the first shape is larger than the second shape"
    response = client.post("/rank", json={"images": [b64(im) for im in images], "text": text})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    expected = geometry.project(encoder.encode_images(images), encoder.encode_texts([text])[0])
    assert [r["index"] for r in results] == torch.argsort(expected, descending=True).tolist()
    assert sorted(r["index"] for r in results) == list(range(len(images)))
    for r in results:
        assert r["score"] == pytest.approx(expected[r["index"]].item(), abs=1e-5)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"images": [], "text": "larger"}, "images"),
        ({"text": "larger"}, "images"),
        ({"images": [{"b64": "AAAA"}]}, "text"),
        ({"images": [{"b64": "AAAA"}], "text": ""}, "empty text"),
    ],
)
def test_bad_rank_requests_are_422(client, body, expected):
    response = client.post("/rank", json=body)
    assert response.status_code == 422
    assert expected in str(response.json()["detail"])
