"""bench/wrk.py: the real wrk against a real loopback HTTP server; its report read right."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import wrk

pytestmark = pytest.mark.skipif(not wrk.available(), reason="wrk not installed (apt-get install wrk)")


class Recorder(BaseHTTPRequestHandler):
    """Answers 200 to a JSON body holding "ok": true, 422 otherwise; keeps every body it read."""

    bodies: list[dict] = []
    delay = 0.0  # seconds before each answer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 — http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.delay)
        type(self).bodies.append({"path": self.path, "type": self.headers["Content-Type"], **body})
        self.send_response(200 if body["ok"] else 422)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # wrk drops its connections when the time is up


@pytest.fixture
def server():
    Recorder.bodies = []
    httpd = QuietServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_posts_every_body_in_turn_to_the_path(server):
    bodies = [json.dumps({"ok": True, "n": n, "text": 'a "quoted" caption'}) for n in range(3)]
    result = wrk.run(server, "/v1/embeddings", bodies, concurrency=2, seconds=1)
    assert result["failed"] == 0 and result["requests"] >= 3 and result["rps"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"] and result["mean_ms"] > 0
    seen = Recorder.bodies
    assert {(b["path"], b["type"], b["text"]) for b in seen} == {
        ("/v1/embeddings", "application/json", 'a "quoted" caption')
    }
    assert {b["n"] for b in seen} == {0, 1, 2}


def test_counts_answers_that_are_not_2xx(server):
    bodies = [json.dumps({"ok": True}), json.dumps({"ok": False})]
    result = wrk.run(server, "/embed", bodies, concurrency=1, seconds=1)
    assert result["requests"] >= 2 and abs(result["failed"] - result["requests"] / 2) <= 1
    assert result["ok"] == result["requests"] - result["failed"]


def test_reads_every_unit_and_refuses_a_report_without_figures():
    report = """Running 1s test @ http://127.0.0.1:1
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.53s   100.00ms   2.80s    68.75%
    Req/Sec    50.00     10.00    60.00     70.00%
  Latency Distribution
     50%  812.00us
     99%    1.20s
  100 requests in 1.00s, 10.00KB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:    100.00
"""
    assert wrk.figures(report) == {
        "failed": 7, "ok": 96, "mean_ms": 2530.0, "p50_ms": 0.812, "p99_ms": 1200.0, "requests": 100, "rps": 100.0
    }
    with pytest.raises(RuntimeError, match="lacks"):
        wrk.figures("connection refused")


def test_a_slow_answer_within_the_timeout_is_not_a_failure(server, monkeypatch):
    monkeypatch.setattr(Recorder, "delay", 2.5)  # past wrk's own 2 s default
    result = wrk.run(server, "/embed", [json.dumps({"ok": True})], concurrency=1, seconds=3, timeout=10)
    assert result["failed"] == 0 and result["requests"] >= 1 and result["p50_ms"] >= 2500
    assert result["mean_ms"] >= 2500
