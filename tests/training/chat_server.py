"""A tiny OpenAI-compatible chat-completions server on loopback, for tests of the `openai` describer
and of everything that asks it for texts (`pcclip pairs`, the paper suite's LLM-written texts)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from training.describers import PAPER_PROMPT

# The server asks a behaviour what to do with each request: behaviour(body, attempt) ->
# (status, headers, body, delay seconds); attempt counts earlier requests with the same prompt.
Behaviour = Callable[[dict, int], tuple[int, dict, object, float]]
QUESTION = re.compile(re.escape(PAPER_PROMPT).replace(r"\{first\}", "(.*)").replace(r"\{second\}", "(.*)"))


def answer(body: dict) -> dict:
    first, second = QUESTION.fullmatch(body["messages"][-1]["content"]).groups()
    text = f"A: The first image shows {first}, while the second shows {second}."
    return {"id": "x", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}


def healthy(body: dict, attempt: int):
    return 200, {}, answer(body), 0.0


class ChatServer:
    """A tiny OpenAI-compatible chat-completions server in a thread, recording every request."""

    def __init__(self):
        self.behaviour: Behaviour = healthy
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.release = threading.Event()  # ends the sleeps of a server that "never answers"
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def attempts(self, content: str) -> int:
        with self._lock:
            return sum(r["body"]["messages"][-1]["content"] == content for r in self.requests)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    attempt = sum(r["body"]["messages"][-1]["content"] == body["messages"][-1]["content"]
                                  for r in server.requests)
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                            "at": time.monotonic()})
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, headers, payload, delay = server.behaviour(body, attempt)
                    server.release.wait(delay)
                    data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                    self.send_response(status)
                    for key, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass
                finally:
                    with server._lock:
                        server.in_flight -= 1

        return Handler

    def close(self):
        self.release.set()
        self._http.shutdown()
        self._http.server_close()
