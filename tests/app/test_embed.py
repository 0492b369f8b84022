"""POST /embed and /embed/upload."""

from __future__ import annotations

import base64

import torch
from apptools import b64, png, shape, solid


def test_text_embeddings_are_the_models_and_unit_norm(client, encoder):
    texts = ["a red circle", "two blue squares", "a photo of a cat"]
    body = client.post("/embed", json={"texts": texts}).json()
    got = torch.tensor(body["text_embeddings"])
    assert got.shape == (3, encoder.embed_dim)
    assert torch.allclose(got.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(got, encoder.encode_texts(texts), atol=1e-5)
    assert body["image_embeddings"] == []
    assert body["fingerprint"] == encoder.fingerprint


def test_image_embeddings_are_the_models_in_request_order(client, encoder):
    images = [shape("red", "circle"), solid("blue"), shape("green", "triangle", size=48)]
    body = client.post("/embed", json={"images": [b64(im) for im in images]}).json()
    got = torch.tensor(body["image_embeddings"])
    assert torch.allclose(got, encoder.encode_images(images), atol=1e-5)
    assert torch.allclose(got.norm(dim=1), torch.ones(3), atol=1e-5)
    assert not torch.allclose(got[0], got[1], atol=1e-3)  # different images, different vectors


def test_texts_and_images_together(client, encoder):
    body = client.post("/embed", json={"texts": ["a red circle"], "images": [b64(shape("red"))]}).json()
    assert len(body["text_embeddings"]) == 1 and len(body["image_embeddings"]) == 1


def test_data_url_prefix_and_whitespace_are_accepted(client, encoder):
    raw = base64.b64encode(png(solid("red"))).decode()
    wrapped = "data:image/png;base64," + "\n".join(raw[i : i + 20] for i in range(0, len(raw), 20))
    a = client.post("/embed", json={"images": [{"b64": raw}]}).json()["image_embeddings"]
    b = client.post("/embed", json={"images": [{"b64": wrapped}]}).json()["image_embeddings"]
    assert a == b


def test_multipart_upload_gives_the_json_answer(client):
    images = [shape("red"), shape("blue", "square")]
    via_json = client.post("/embed", json={"texts": ["a red circle"], "images": [b64(im) for im in images]}).json()
    via_upload = client.post(
        "/embed/upload",
        files=[("images", (f"{i}.png", png(im), "image/png")) for i, im in enumerate(images)],
        data={"texts": ["a red circle"]},
    ).json()
    assert torch.allclose(torch.tensor(via_upload["image_embeddings"]), torch.tensor(via_json["image_embeddings"]))
    assert torch.allclose(torch.tensor(via_upload["text_embeddings"]), torch.tensor(via_json["text_embeddings"]))


def test_repeated_texts_come_from_the_cache(client):
    engine = client.app.state.model_slot.require()
    first = client.post("/embed", json={"texts": ["a cached sentence", "another one"]}).json()
    hits = engine.health().cache_hits
    second = client.post("/embed", json={"texts": ["another one", "a cached sentence"]}).json()
    assert engine.health().cache_hits == hits + 2
    assert second["text_embeddings"] == first["text_embeddings"][::-1]
