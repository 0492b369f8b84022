"""Decoded pixels in flight are bounded across requests (PCCLIP_MAX_PIXELS_IN_FLIGHT).

A request reserves its images' pixels (read from their headers) before decoding any and gives
each image's back once it is the model's input; beyond the budget it gets 429 + Retry-After.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
from apptools import b64, make_settings, solid

from app.main import create_app


class GatedPixels:
    """The real preprocessing, held at a gate: each call waits until the test opens it."""

    def __init__(self, pixels) -> None:
        self.pixels = pixels
        self.gate = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, images):
        with self._lock:
            self.calls += 1
        self.gate.wait(10)
        return self.pixels(images)


async def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def test_requests_beyond_the_pixel_budget_are_refused_while_those_within_it_succeed(encoder, monkeypatch):
    gated = GatedPixels(encoder.pixels)
    monkeypatch.setattr(encoder, "pixels", gated)  # the session encoder; monkeypatch restores it
    two_images = {"images": [b64(solid("red", 50)), b64(solid("blue", 50))]}  # 2 × 2500 pixels
    one_image = {"images": [b64(solid("green", 50))]}  # 2500 pixels

    async def scenario():
        # inline_decode_pixels=0: small images too are decoded in the threadpool, where the gate can hold them
        app = create_app(make_settings(max_pixels_in_flight=10_000, inline_decode_pixels=0), encoder=encoder)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
                first = asyncio.create_task(client.post("/embed", json=two_images))
                second = asyncio.create_task(client.post("/embed", json=two_images))
                await until(lambda: gated.calls == 2)  # both decoding: 10,000 pixels in flight
                third = asyncio.create_task(client.post("/embed", json=one_image))
                await until(lambda: third.done() or gated.calls == 3)
                gated.gate.set()
                answers = await asyncio.gather(first, second, third)
                after = await client.post("/embed", json=one_image)
            return answers, after, app.state.model_slot.require()

    (first, second, third), after, engine = asyncio.run(scenario())
    assert first.status_code == 200 and second.status_code == 200
    assert len(first.json()["image_embeddings"]) == 2
    assert third.status_code == 429, third.text[:300]
    assert int(third.headers["retry-after"]) >= 1
    assert "pixels" in third.text and "10000" in third.text
    assert after.status_code == 200  # the budget was given back
    assert engine.health().pixels_in_flight == 0
