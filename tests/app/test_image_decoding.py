"""One image file, one vector: the server and `pcclip index build` decode a file alike
(`models.images.decode_upright`: EXIF orientation applied, a large JPEG decoded reduced towards
the model's input side), and the reduced decode embeds like the full one."""

from __future__ import annotations

import io

import numpy as np
from apptools import b64, make_settings, photo_jpeg
from fastapi.testclient import TestClient
from PIL import Image

from app.index import IndexStore
from app.index.build import build_index
from app.index.sources import read_source
from app.main import create_app
from models.images import to_rgb


def full_decode(blob: bytes) -> Image.Image:
    return to_rgb(Image.open(io.BytesIO(blob)))


def test_the_reduced_decode_embeds_like_the_full_decode(make_client, encoder):
    blob = photo_jpeg()
    served = np.array(make_client().post("/embed", json={"images": [b64(blob)]}).json()["image_embeddings"][0])
    full = encoder.encode_images([full_decode(blob)])[0].numpy()
    assert encoder.input_side is not None and 640 // encoder.input_side >= 2  # the decode is reduced
    assert 0.999 <= float(served @ full) < 1 - 1e-6  # close, and not the full decode itself


def test_the_server_and_an_index_build_give_a_rotated_photo_one_vector(make_client, encoder, tmp_path):
    blob = photo_jpeg(orientation=6)
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "rotated.jpg").write_bytes(blob)
    with IndexStore.open(tmp_path / "index", fingerprint=encoder.fingerprint, embed_dim=encoder.embed_dim) as store:
        assert build_index(store, encoder, read_source(folder), progress=False).added == 1
        indexed = store.get("rotated.jpg").vector
    served = np.array(make_client().post("/embed", json={"images": [b64(blob)]}).json()["image_embeddings"][0])
    assert np.allclose(indexed, served, atol=1e-5)
    answer = make_client().post("/embed", json={"images": [b64(photo_jpeg())]})
    unrotated = np.array(answer.json()["image_embeddings"][0])
    assert float(served @ unrotated) < 0.99  # the orientation was applied, not ignored


def test_each_photo_gives_back_the_pixels_its_header_declared(encoder, monkeypatch):
    """Decoded reduced, a photo's image is smaller than its header said: what it gives back
    once preprocessed is still the header's count, so the next photo decodes with it free."""
    app = create_app(make_settings(), encoder=encoder)
    held_at_each_photo = []

    def recording(images):
        held_at_each_photo.append(app.state.model_slot.require().health().pixels_in_flight)
        return encoder.pixels(images)

    with TestClient(app) as client:
        engine = app.state.model_slot.require()
        monkeypatch.setattr(engine, "_encoder", Recording(encoder, recording))
        answer = client.post("/embed", json={"images": [b64(photo_jpeg()), b64(photo_jpeg())]})
        assert answer.status_code == 200, answer.text[:300]
        assert held_at_each_photo == [2 * 640 * 480, 640 * 480]
        assert engine.health().pixels_in_flight == 0


class Recording:
    """The session encoder whose `pixels` is `pixels`."""

    def __init__(self, encoder, pixels) -> None:
        self._encoder, self.pixels = encoder, pixels

    def __getattr__(self, name):
        return getattr(self._encoder, name)
