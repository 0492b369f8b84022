"""Images reach the model in forward calls of at most PCCLIP_IMAGE_CHUNK (32 on the CPU when unset)."""

from __future__ import annotations

import pytest
from apptools import b64, make_settings, solid

from app.engine import CPU_IMAGE_CHUNK
from app.main import create_app


class RecordingEncoder:
    """The session encoder, noting the `batch_size` of each `encode_pixels` call."""

    def __init__(self, encoder) -> None:
        self._encoder = encoder
        self.chunks: list[int] = []

    def __getattr__(self, name: str):
        return getattr(self._encoder, name)

    def encode_pixels(self, pixels, batch_size: int = 64):
        self.chunks.append(batch_size)
        return self._encoder.encode_pixels(pixels, batch_size)


@pytest.mark.parametrize(("settings", "chunk"), [({}, CPU_IMAGE_CHUNK), ({"image_chunk": 5}, 5)])
def test_image_batches_run_in_chunks_of_the_setting(make_client, encoder, settings, chunk):
    assert encoder.device.type == "cpu"
    recording = RecordingEncoder(encoder)
    client = make_client(create_app(make_settings(**settings), encoder=recording))
    response = client.post("/embed", json={"images": [b64(solid("red")), b64(solid("blue"))]})
    assert response.status_code == 200 and len(response.json()["image_embeddings"]) == 2
    assert recording.chunks == [chunk]
