"""A client that hangs up while its request waits for the model: the work is dropped (app/hangup.py).

A real uvicorn on 127.0.0.1 serves the session encoder behind a gate the test holds: one request
occupies the model, a second one queues behind it and its client closes the socket. Once the
server has counted the hang-up (499), the gate opens: the model must never see the second
request's texts. Every step waits for the server's own counters, never for time to pass.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import httpx
from apptools import make_settings
from test_multipart_limits import loopback_server, request_head

from app.main import create_app


class GatedEncoder:
    """The session encoder, its forward held while `gate` is closed; notes each call's texts."""

    def __init__(self, encoder) -> None:
        self._encoder = encoder
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.texts: list[list[str]] = []

    def __getattr__(self, name: str):
        return getattr(self._encoder, name)

    def encode_texts(self, texts, batch_size: int = 256):
        self.entered.set()
        assert self.gate.wait(30), "the gate was never opened"
        self.texts.append(list(texts))
        return self._encoder.encode_texts(texts, batch_size)


def metric(url: str, pattern: str) -> float:
    """The value of the first line of /metrics matching `pattern` (0 when none does)."""
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if re.match(pattern, line):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def test_the_queued_texts_of_a_client_that_hung_up_never_reach_the_model(encoder):
    gated = GatedEncoder(encoder)
    with loopback_server(create_app(make_settings(), encoder=gated)) as (host, port):
        url = f"http://{host}:{port}"
        first: dict[str, httpx.Response] = {}
        waiting = threading.Thread(
            target=lambda: first.update(answer=httpx.post(f"{url}/embed", json={"texts": ["first"]}, timeout=60))
        )
        waiting.start()
        assert gated.entered.wait(30)  # the model is busy with the first request

        body = json.dumps({"texts": ["second", "third"]}).encode()
        head = request_head("/embed", {"Content-Type": "application/json", "Content-Length": str(len(body))})
        with socket.create_connection((host, port)) as conn:
            conn.sendall(head + body)
            wait_for(lambda: metric(url, r"pcclip_queue_depth ") == 2, "the second request queued")
        hung_up = r'pcclip_requests_total\{method="POST",route="/embed",status="499"\}'
        wait_for(lambda: metric(url, hung_up) == 1, "the hang-up counted as 499")

        gated.gate.set()
        waiting.join(30)
        assert first["answer"].status_code == 200
        wait_for(lambda: metric(url, r"pcclip_queue_depth ") == 0, "the queue emptied")
        assert gated.texts == [["first"]]
        assert metric(url, r'pcclip_requests_total\{method="POST",route="/embed",status="5') == 0
