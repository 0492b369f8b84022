"""Oversized and malformed multipart uploads (`/embed/upload`, `/classify/upload`): a quick, clean 4xx.

Body-size limits are tested against a real uvicorn on 127.0.0.1 over raw sockets, so "refused
without reading the whole body" means what it says: the client never sends the rest.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from apptools import make_settings, png, png_header_only, shape

from app.main import create_app

LIMIT = 64 * 1024  # PCCLIP_MAX_BODY_BYTES of the servers here
UPLOADS = ("/embed/upload", "/classify/upload")
BOUNDARY = "pcclip-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@contextmanager
def loopback_server(app) -> Iterator[tuple[str, int]]:
    """`app` served by uvicorn in a thread on 127.0.0.1 (a free port); yields (host, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield sock.getsockname()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def exchange(address: tuple[str, int], head: bytes, body_chunks=(), timeout: float = 10.0) -> tuple[int, bytes, float]:
    """Send `head` and then `body_chunks` (stopping quietly if the server closes), read the whole
    answer; (status, response bytes, seconds from the first byte sent to the answer's end)."""
    with socket.create_connection(address, timeout=timeout) as conn:
        started = time.monotonic()
        conn.sendall(head)
        for chunk in body_chunks:
            try:
                conn.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = b""
        try:
            while data := conn.recv(65536):
                answer += data
                if response_complete(answer):
                    break
        except ConnectionResetError:
            pass
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12]), answer, elapsed


def response_complete(answer: bytes) -> bool:
    """`answer` holds a whole response head and the Content-Length bytes of body it announces."""
    if b"\r\n\r\n" not in answer:
        return False
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def request_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture(scope="module")
def server(encoder):
    with loopback_server(create_app(make_settings(max_body_bytes=LIMIT), encoder=encoder)) as address:
        yield address


@pytest.mark.parametrize("path", UPLOADS)
def test_a_declared_oversized_body_is_refused_before_it_is_sent(server, path):
    """Content-Length says 1 GB; the client sends none of it and still gets its 413 at once."""
    head = request_head(path, {"Content-Type": MULTIPART, "Content-Length": str(1 << 30)})
    status, answer, elapsed = exchange(server, head)
    assert status == 413
    assert b"PCCLIP_MAX_BODY_BYTES" in answer
    assert elapsed < 5


@pytest.mark.parametrize("path", UPLOADS)
def test_a_chunked_oversized_body_is_refused_once_over_the_limit(server, path):
    """No Content-Length: the server counts while it reads, and answers 413 as soon as the
    count passes the limit, without waiting for the body's end (which never comes)."""
    head = request_head(path, {"Content-Type": MULTIPART, "Transfer-Encoding": "chunked"})
    piece = b"x" * 8192
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * (2 * LIMIT // len(piece))  # no final 0-chunk
    status, answer, elapsed = exchange(server, head, chunks)
    assert status == 413
    assert elapsed < 5


def test_a_body_under_the_limit_is_served(server):
    image = png(shape("red"))
    body = (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a.png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode() + image + f"\r\n--{BOUNDARY}--\r\n".encode()
    headers = {"Content-Type": MULTIPART, "Content-Length": str(len(body)), "Connection": "close"}
    head = request_head("/embed/upload", headers)
    status, answer, _ = exchange(server, head + body)
    assert status == 200, answer[:300]


def test_bytes_past_the_declared_length_are_not_the_body(server):
    """A small Content-Length cannot smuggle a big body: the body is the declared 10 bytes (not
    multipart, so 400); what follows is not read into this request."""
    head = request_head("/embed/upload", {"Content-Type": MULTIPART, "Content-Length": "10"})
    status, _, _ = exchange(server, head, [b"y" * (2 * LIMIT)])
    assert 400 <= status < 500


# --- malformed and hostile multipart bodies (the in-process client is enough) ----------------


def multipart(*parts: tuple[dict[str, str], bytes]) -> bytes:
    """A multipart body from (headers, content) parts."""
    out = b""
    for headers, content in parts:
        out += f"--{BOUNDARY}\r\n".encode()
        out += b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n" + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def field(name: str, value: bytes) -> tuple[dict[str, str], bytes]:
    return {"Content-Disposition": f'form-data; name="{name}"'}, value


def upload(name: str, content: bytes, filename: str = "a.png", **extra: str) -> tuple[dict[str, str], bytes]:
    return {"Content-Disposition": f'form-data; name="{name}"; filename="{filename}"', **extra}, content


@pytest.fixture(scope="module")
def roomy(encoder):
    """A client whose body limit lets the hostile-but-small bodies below through to the parser."""
    from fastapi.testclient import TestClient

    with TestClient(create_app(make_settings(max_body_bytes=8 * 1024 * 1024), encoder=encoder)) as client:
        yield client


def post_multipart(client, path: str, body: bytes):
    started = time.monotonic()
    response = client.post(path, content=body, headers={"Content-Type": MULTIPART})
    return response, time.monotonic() - started


@pytest.mark.parametrize("path", UPLOADS)
def test_ten_thousand_tiny_fields_are_a_clean_400(roomy, path):
    body = multipart(upload("images", png(shape("red"))), *[field("labels", b"x")] * 10_000)
    response, elapsed = post_multipart(roomy, path, body)
    assert response.status_code == 400
    assert "Too many fields" in response.json()["detail"]
    assert elapsed < 5


def test_more_files_than_the_parser_takes_are_a_clean_400(roomy):
    body = multipart(*[upload("images", b"x")] * 1_001)
    response, _ = post_multipart(roomy, "/embed/upload", body)
    assert response.status_code == 400
    assert "Too many files" in response.json()["detail"]


def test_more_images_than_max_items_are_a_clean_422(encoder):
    from fastapi.testclient import TestClient

    with TestClient(create_app(make_settings(max_items=4), encoder=encoder)) as client:
        response, _ = post_multipart(client, "/embed/upload", multipart(*[upload("images", png(shape("red")))] * 5))
    assert response.status_code == 422
    assert "at most 4" in response.json()["detail"]


@pytest.mark.parametrize(
    "part",
    [
        upload("images", png(shape("red")), filename="a" * 1_000_000 + ".png"),  # a 1 MB filename
        upload("images", png(shape("red")), **{"X-Padding": "h" * 1_000_000}),  # a 1 MB part header
        ({"Content-Disposition": "form-data; " + "x=y; " * 100_000 + 'name="images"'}, b"z"),
    ],
    ids=["filename", "header", "parameters"],
)
@pytest.mark.parametrize("path", UPLOADS)
def test_huge_part_headers_are_a_clean_400(roomy, path, part):
    response, elapsed = post_multipart(roomy, path, multipart(part, field("labels", b"red")))
    assert response.status_code == 400
    assert elapsed < 5


@pytest.mark.parametrize(
    "body",
    [
        b"not multipart at all",
        f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--{BOUNDARY}--\r\n".encode(),
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a\"\r\n\r\n".encode(),  # cut off
        b"",
    ],
    ids=["garbage", "no-name", "truncated", "empty"],
)
@pytest.mark.parametrize("path", UPLOADS)
def test_malformed_multipart_is_a_clean_4xx(roomy, path, body):
    response, _ = post_multipart(roomy, path, body)
    assert 400 <= response.status_code < 500, response.text
    assert "detail" in response.json()


def test_a_missing_boundary_is_a_clean_400(roomy):
    response = roomy.post("/embed/upload", content=b"x", headers={"Content-Type": "multipart/form-data"})
    assert response.status_code == 400


@pytest.mark.parametrize("path", UPLOADS)
def test_a_decompression_bomb_upload_is_refused_from_its_header(roomy, path):
    """A 100-byte PNG claiming 100,000 × 100,000 pixels: refused before any pixel is decoded."""
    body = multipart(upload("images", png_header_only(100_000, 100_000)), field("labels", b"red"))
    response, elapsed = post_multipart(roomy, path, body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("images[0]: image")
    assert elapsed < 5


@pytest.mark.parametrize(("width", "height"), [(9000, 10), (5000, 5000)])
def test_a_header_over_the_configured_limits_is_refused(roomy, width, height):
    body = multipart(upload("images", png_header_only(width, height)))
    response, _ = post_multipart(roomy, "/embed/upload", body)
    assert response.status_code == 422
    assert "pixels" in response.json()["detail"]
