"""Images reach the model in forward calls of at most PCCLIP_IMAGE_CHUNK (on the CPU when unset: what the
model's largest activation allows, `app.engine.cpu_image_chunk`)."""

from __future__ import annotations

import pytest
from apptools import b64, make_settings, solid

from app.engine import CPU_IMAGE_CHUNK, MALLOC_REUSE_BYTES, cpu_image_chunk
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


@pytest.mark.parametrize(
    ("settings", "chunk"), [({"max_batch": 16}, 16), ({"max_batch": 2048}, 512), ({"image_chunk": 5}, 5)]
)
def test_image_batches_run_in_chunks_of_the_setting(make_client, encoder, settings, chunk):
    assert encoder.device.type == "cpu"
    recording = RecordingEncoder(encoder)
    client = make_client(create_app(make_settings(**settings), encoder=recording))
    response = client.post("/embed", json={"images": [b64(solid("red")), b64(solid("blue"))]})
    assert response.status_code == 200 and len(response.json()["image_embeddings"]) == 2
    assert recording.chunks == [chunk]


class Activations:
    """An encoder whose image tower's largest activation per image is `per_image` bytes."""

    def __init__(self, per_image: int | None) -> None:
        self.per_image = per_image

    def image_activation_bytes(self) -> int | None:
        return self.per_image


@pytest.mark.parametrize(
    ("per_image", "chunk"),
    [
        (614_400, 32),  # ViT-B-32: 50 tokens x 3072 (measured: 30.6 ms per image in 32s, 34.0 in 64s)
        (2_420_736, 8),  # ViT-B-16: 197 tokens x 3072 (measured: 141-146 ms per image in 8s, 171-175 in 32s)
        (4_210_688, 4),  # ViT-L-14: 257 tokens x 4096
        (MALLOC_REUSE_BYTES, 1),
        (4 * MALLOC_REUSE_BYTES, 1),  # too large for any chunk: one image at a time
        (None, CPU_IMAGE_CHUNK),  # a tower that does not say its input side
    ],
)
def test_the_cpu_chunk_keeps_the_largest_activation_within_mallocs_reuse(per_image, chunk):
    assert cpu_image_chunk(Activations(per_image)) == chunk  # type: ignore[arg-type]
