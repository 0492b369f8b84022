"""The event loop calls no torch op that releases the GIL on the hot paths (/embed, /v1/embeddings).

Such an op gives the GIL away and must win it back from the batcher's forward and the decoding
threads: under load that wait is up to the switch interval (5 ms) per op, and the event loop
serves every request (see app/batcher.py). Tensor bookkeeping that stays in Python (`numpy()`,
`from_numpy`, `len`, attribute reads) is allowed.
"""

from __future__ import annotations

import pytest
from apptools import b64, make_settings, photo_jpeg, solid
from fastapi.testclient import TestClient
from torch.overrides import TorchFunctionMode

from app.main import create_app

HELD_GIL = {"numpy", "from_numpy", "__len__", "__get__", "tolist"}


class TorchCalls(TorchFunctionMode):
    """Records the torch functions and tensor methods called on the thread it is active on."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", repr(func)))
        return func(*args, **(kwargs or {}))


def recording(app, calls: TorchCalls):
    """`app`, with `calls` active on the event loop while each request is handled."""

    async def asgi(scope, receive, send):
        with calls:
            await app(scope, receive, send)

    return asgi


def image_uri() -> str:
    return f"data:image/jpeg;base64,{b64(photo_jpeg())['b64']}"


BODIES = {  # (path, body for a text): texts differ per request, so each misses the text cache
    "embed": ("/embed", lambda text: {"texts": [text, "two dogs"], "images": [b64(photo_jpeg())]}),
    "embed, decoded on the loop": ("/embed", lambda text: {"texts": [text], "images": [b64(solid("red", 96))]}),
    "v1 floats": ("/v1/embeddings", lambda text: {"model": "tiny-base", "input": [text, {"image": image_uri()}]}),
    "v1 base64": ("/v1/embeddings", lambda text: {"model": "tiny-base", "input": [text], "encoding_format": "base64"}),
}


@pytest.mark.parametrize("name", BODIES)
def test_no_gil_releasing_torch_op_on_the_event_loop(encoder, name):
    path, body = BODIES[name]
    app = create_app(make_settings(), encoder=encoder)
    calls = TorchCalls()
    with TestClient(recording(app, calls)) as client:
        client.post(path, json=body("a red square")).raise_for_status()  # warm: lazy imports, first batch
        calls.names.clear()
        answer = client.post(path, json=body("a blue circle"))
    assert answer.status_code == 200, answer.text[:300]
    assert calls.names, "the recorder saw nothing: it is not on the event loop"
    assert set(calls.names) <= HELD_GIL, sorted(set(calls.names) - HELD_GIL)
