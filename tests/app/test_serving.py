"""`pcclip serve` over real sockets: connection limits, forwarded headers, clients that hang up.

Two server processes on 127.0.0.1 (quality.server), started together for the module: `direct`
(no proxy trusted, as by default) and `proxied` (PCCLIP_FORWARDED_ALLOW_IPS=127.0.0.1). Both
have an API key, a rate limit that refills nothing within a test, at most MAX_CONNECTIONS
connections and a HEAD_TIMEOUT_S short enough to wait for.
"""

from __future__ import annotations

import os
import resource
import socket
import time
from contextlib import ExitStack, closing

import httpx
import pytest
from test_multipart_limits import exchange, request_head, response_complete

from quality.fuzz import answered
from quality.server import Server, loopback_server, wait_ready

KEY = "serving-test-key"
MAX_CONNECTIONS = 8
HEAD_TIMEOUT_S = 2.0
BURST = 3  # wrong keys a client address may try before 429


def server_settings(index_dir: str, **extra: str) -> dict[str, str]:
    return {
        "PCCLIP_MODEL": "tiny",
        "PCCLIP_DEVICE": "cpu",
        "PCCLIP_TORCH_THREADS": "1",
        "PCCLIP_INDEX_DIR": index_dir,
        "PCCLIP_API_KEY": KEY,
        "PCCLIP_RATE_LIMIT": "0.0001",  # one token per ~3 hours: no refill during the tests
        "PCCLIP_RATE_BURST": str(BURST),
        "PCCLIP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "PCCLIP_HEAD_TIMEOUT_S": str(HEAD_TIMEOUT_S),
        **extra,
    }


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> dict[str, Server]:
    with ExitStack() as stack:
        started = {
            "direct": server_settings(str(tmp_path_factory.mktemp("direct"))),
            "proxied": server_settings(str(tmp_path_factory.mktemp("proxied")), PCCLIP_FORWARDED_ALLOW_IPS="127.0.0.1"),
        }
        running = {name: stack.enter_context(loopback_server(env, wait=False)) for name, env in started.items()}
        for server in running.values():
            wait_ready(server, timeout=600)  # the model loaded: nothing else keeps the event loop busy
        yield running


@pytest.fixture
def server(servers) -> Server:
    return servers["direct"]


def address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def read_until_closed(conn: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (fails after `timeout`)."""
    conn.settimeout(timeout)
    answer = b""
    try:
        while data := conn.recv(65536):
            answer += data
    except ConnectionResetError:
        pass
    return answer


def read_response(conn: socket.socket) -> bytes:
    answer = b""
    while not response_complete(answer) and (data := conn.recv(65536)):
        answer += data
    return answer


def health(server: Server) -> int:
    return httpx.get(f"{server.url}/health", timeout=10).status_code


# --- connections -----------------------------------------------------------------------------


def test_an_idle_connection_is_closed_after_the_head_timeout(server):
    with closing(socket.create_connection(address(server))) as conn:
        opened = time.monotonic()
        answer = read_until_closed(conn, timeout=30)
        waited = time.monotonic() - opened
    assert answer == b""  # nothing was asked, nothing is said: the connection is just closed
    assert waited >= HEAD_TIMEOUT_S * 0.9  # the server's clock and ours differ by a little


def test_a_head_trickled_byte_by_byte_is_cut_off_at_the_timeout(server):
    """Slowloris: a byte every 0.1 s keeps the connection busy but never completes the head;
    the deadline counts from the head's start, not from the last byte."""
    trickle = b"X-Padding: " + b"a" * 300  # 30 s of trickle, never a blank line
    with closing(socket.create_connection(address(server))) as conn:
        opened = time.monotonic()
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        conn.settimeout(0.1)
        answer = b""
        for byte in trickle:
            try:
                conn.sendall(bytes([byte]))
                data = conn.recv(65536)
            except TimeoutError:
                continue  # nothing from the server yet: the next byte
            except (BrokenPipeError, ConnectionResetError):
                break
            answer += data
            if not data:
                break  # closed
        waited = time.monotonic() - opened
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"PCCLIP_HEAD_TIMEOUT_S" in answer
    assert HEAD_TIMEOUT_S * 0.9 <= waited < 0.1 * len(trickle)


def test_a_keep_alive_connection_may_idle_longer_than_the_head_timeout(server):
    """The head deadline starts with a request's first byte: between requests, PCCLIP_KEEP_ALIVE_S rules."""
    get = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with closing(socket.create_connection(address(server), timeout=30)) as conn:
        conn.sendall(get)
        assert read_response(conn).startswith(b"HTTP/1.1 200")
        time.sleep(HEAD_TIMEOUT_S * 1.5)
        conn.sendall(get)
        assert read_response(conn).startswith(b"HTTP/1.1 200")


def test_connections_beyond_the_cap_are_refused_at_once(server):
    """MAX_CONNECTIONS clients hold their connections (a head sent, the body never); the next
    one gets a 503 as soon as it connects, and once they leave, the server serves again."""
    held = []
    try:
        for _ in range(MAX_CONNECTIONS):
            conn = socket.create_connection(address(server))
            conn.sendall(request_head("/embed", {"Content-Type": "application/json", "Content-Length": "100"}))
            held.append(conn)
        with closing(socket.create_connection(address(server))) as extra:
            refused_at = time.monotonic()
            answer = read_until_closed(extra, timeout=30)
            assert time.monotonic() - refused_at < 5
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"PCCLIP_MAX_CONNECTIONS" in answer and b"retry-after: 1" in answer.lower()
    finally:
        for conn in held:
            conn.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and health(server) != 200:  # until the server saw them leave
        time.sleep(0.1)
    assert health(server) == 200


def test_running_out_of_file_descriptors_logs_a_line_not_a_flood(server):
    """accept() failing with "Too many open files" (the server's fd limit lowered under the cap)
    is one log line per 10 s, not a traceback per attempt (asyncio retries thousands a second)."""
    soft, hard = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
    logged = len(server.log_path.read_bytes())
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (len(os.listdir(f"/proc/{server.pid}/fd")) + 1, hard))
    try:
        with ExitStack() as stack:
            for _ in range(MAX_CONNECTIONS):  # connect() completes in the listen backlog, accepted or not
                stack.enter_context(closing(socket.create_connection(address(server))))
            time.sleep(3)
    finally:
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (soft, hard))
    log = server.log_path.read_bytes()[logged:].decode(errors="replace")
    assert log.count("Too many open files") == 1, log[-3000:]
    assert "PCCLIP_MAX_CONNECTIONS" in log
    assert health(server) == 200


# --- clients that hang up --------------------------------------------------------------------


def test_a_client_that_hangs_up_mid_body_is_counted_as_499_not_500(server):
    before = answered(server, KEY)
    with closing(socket.create_connection(address(server))) as conn:
        conn.sendall(request_head("/embed", {"Content-Type": "application/json", "Content-Length": "1000"}))
        conn.sendall(b'{"texts": ["half a bo')
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (new := answered(server, KEY) - before)[("POST", "unmatched", "499")] == 0:
        assert not any(status == "500" for _, _, status in new), new
        time.sleep(0.1)
    new = answered(server, KEY) - before
    assert new[("POST", "unmatched", "499")] == 1, new
    assert not any(status.startswith("5") for _, _, status in new), new


# --- forwarded headers -----------------------------------------------------------------------


def guess_keys(server: Server, attempts: int) -> list[int]:
    """Wrong keys, each from a different claimed client address (X-Forwarded-For)."""
    statuses = []
    for attempt in range(attempts):
        head = request_head(
            "/embed",
            {
                "Authorization": "Bearer wrong",
                "X-Forwarded-For": f"203.0.113.{attempt}",
                "Content-Type": "application/json",
                "Content-Length": "2",
                "Connection": "close",
            },
        )
        statuses.append(exchange(address(server), head + b"{}")[0])
    return statuses


def test_a_spoofed_forwarded_for_does_not_escape_the_guessing_limit(server):
    """By default no proxy is trusted: the limit is per connecting address, whatever the header claims."""
    assert guess_keys(server, BURST + 3) == [401] * BURST + [429] * 3


def test_forwarded_for_is_honoured_from_a_configured_proxy(servers):
    """With PCCLIP_FORWARDED_ALLOW_IPS naming the proxy (here 127.0.0.1), each forwarded
    address has its own bucket: every guess is a 401 of its own client."""
    assert guess_keys(servers["proxied"], BURST + 3) == [401] * (BURST + 3)
