"""Concurrent requests are merged by the batcher and answer what they answer one at a time."""

from __future__ import annotations

import asyncio
import math

import httpx
from apptools import b64, make_settings, shape

from app.main import create_app

COLOURS = ["red", "green", "blue", "yellow"]
KINDS = ["circle", "square", "triangle"]


def requests() -> list[tuple[str, dict]]:
    """50 varied requests over every model endpoint."""
    images = [b64(shape(c, k, scale=s)) for c in COLOURS for k in KINDS for s in (0.4, 0.8)]  # 24
    out: list[tuple[str, dict]] = []
    for i in range(50):
        a, b, c = images[i % 24], images[(i * 7 + 3) % 24], images[(i * 5 + 11) % 24]
        match i % 5:
            case 0:
                out.append(("/embed", {"images": [a, b], "texts": [f"request {i}"]}))
            case 1:
                out.append(("/classify", {"images": [a], "labels": COLOURS, "top_k": 3}))
            case 2:
                comparative = {"first": "red", "second": "yellow", "text": "red is darker, while yellow is lighter"}
                out.append(("/classify", {"images": [b, c], "labels": COLOURS, "comparatives": [comparative]}))
            case 3:
                texts = ["the first is larger than the second", f"the first is {COLOURS[i % 4]}"]
                out.append(("/classify/difference", {"pairs": [{"first": a, "second": b}], "texts": texts}))
            case _:
                out.append(("/rank", {"images": [a, b, c], "text": "the first is more red than the second"}))
    return out


def same(x, y) -> bool:
    """Equal JSON, floats to 1e-5 (a row's float sums may differ with the batch it rode in)."""
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, abs_tol=1e-5)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(same(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    return x == y


async def run(app, calls: list[tuple[str, dict]], concurrent: bool) -> list[dict]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def one(path: str, body: dict) -> dict:
            response = await client.post(path, json=body)
            assert response.status_code == 200, response.text
            return response.json()

        if concurrent:
            return await asyncio.gather(*(one(path, body) for path, body in calls))
        return [await one(path, body) for path, body in calls]


def test_fifty_concurrent_requests_answer_as_sequential_ones(encoder):
    calls = requests()

    async def answers(concurrent: bool) -> tuple[list[dict], int]:
        # A fresh app per run: nothing cached from the other run.
        app = create_app(make_settings(max_wait_ms=20, max_batch=32), encoder=encoder)
        async with app.router.lifespan_context(app):
            results = await run(app, calls, concurrent)
            return results, app.state.model_slot.require().health().largest_batch

    together, largest_together = asyncio.run(answers(concurrent=True))
    sequential, largest_alone = asyncio.run(answers(concurrent=False))
    assert largest_together > largest_alone  # the concurrent requests really were merged
    for (path, _), a, b in zip(calls, sequential, together, strict=True):
        assert same(a, b), path
