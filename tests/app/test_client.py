"""The typed Python client, driven against the app in-process."""

from __future__ import annotations

import pytest
import torch
from apptools import shape

from app.client import PcclipClient, PcclipError, image_input
from app.schemas import ClassifyResponse, EmbedResponse, ImageInput


@pytest.fixture
def api(client):
    return PcclipClient(http=client)


def test_every_endpoint_has_a_typed_method(api, encoder, tmp_path):
    red, blue = shape("red"), shape("blue", "square")
    assert api.health().status == "ok"
    assert api.ready().ready is True
    assert api.info().fingerprint == encoder.fingerprint
    assert "pcclip_requests_total" in api.metrics()

    embedded = api.embed(texts=["a red circle"], images=[red])
    assert isinstance(embedded, EmbedResponse)
    assert torch.allclose(torch.tensor(embedded.image_embeddings), encoder.encode_images([red]), atol=1e-5)

    path = tmp_path / "red.png"
    red.save(path)
    from_path = api.embed(images=[path, str(path), path.read_bytes()])
    assert all(row == from_path.image_embeddings[0] for row in from_path.image_embeddings)

    classified = api.classify(
        [red, blue],
        ["red", "blue", "green"],
        comparatives=[{"first": "red", "second": "blue", "text": "red is warm, while blue is cool"}],
        top_k=1,
    )
    assert isinstance(classified, ClassifyResponse)
    assert [r.labels[0].label for r in classified.results] == ["red", "blue"]

    difference = api.classify_difference([(red, blue)], ["the first is red, the second blue", "the first is bigger"])
    assert len(difference.results[0].scores) == 2

    ranked = api.rank([blue, red], "the first is more red than the second")
    assert sorted(r.index for r in ranked.results) == [0, 1]


def test_errors_raise_with_status_and_detail(api):
    with pytest.raises(PcclipError) as error:
        api.classify([shape("red")], ["red", "red"])
    assert error.value.status_code == 422
    assert "more than once" in error.value.detail


def test_a_validation_failure_raises_with_the_fields(api):
    with pytest.raises(PcclipError) as error:
        api.classify([ImageInput(url="https://example.com/a.png")], ["red"], top_k=0)
    assert error.value.status_code == 422 and error.value.detail.startswith("top_k: ")
    assert [field["loc"] for field in error.value.errors] == [["body", "top_k"]]


def test_api_key_is_sent(make_client):
    http = make_client(api_key="k")
    with pytest.raises(PcclipError) as error:
        PcclipClient(http=http).embed(texts=["x"])
    assert error.value.status_code == 401
    assert len(PcclipClient(http=http, api_key="k").embed(texts=["x"]).text_embeddings) == 1


def test_image_input_passes_urls_through():
    url = ImageInput(url="https://example.com/a.png")
    assert image_input(url) is url
