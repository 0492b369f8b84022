"""README's shell blocks that talk to the API run as written against a live `pcclip serve`.

A block is marked by an HTML comment on the line before its fence:

    <!-- readme-test: api -->                          run here, against a loopback server
    <!-- readme-test: skip, needs a Docker engine -->  not run: this machine has no Docker engine

Every block that calls the API (a line that names `localhost:8000` outside a comment: curl, or a
Python client's base URL) must be marked `api`, and its curl calls must use `--fail-with-body`, so an
HTTP error fails the block; a `skip` is accepted only for a block that does need Docker. The server
is what `make serve` starts (the default model), on a free port in place of 8000; the blocks run
in the repository root with the shell's PATH minus this interpreter's folder, as in a fresh shell
on a fresh clone (no virtualenv active).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from quality.server import loopback_server

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^(?:<!-- readme-test: (?P<mark>[^>]*?) -->\n)?```sh\n(?P<body>.*?)^```$", re.M | re.S)
API = "localhost:8000"  # where `make serve` listens
CALLS_API = re.compile(r"^[^#\n]*" + re.escape(API), re.M)  # named before any comment on its line
ERROR_BODY = re.compile(r'"(?:detail|error)"\s*:')  # the native and the /v1 error bodies


def readme_blocks() -> list[tuple[str | None, str]]:
    """(marker or None, body) of each ```sh block of README.md."""
    return [(m["mark"], m["body"]) for m in BLOCK.finditer((ROOT / "README.md").read_text(encoding="utf-8"))]


def test_api_blocks_are_marked_and_every_skip_needs_docker():
    blocks = readme_blocks()
    assert sum(mark == "api" for mark, _ in blocks) >= 1
    for mark, body in blocks:
        if CALLS_API.search(body):
            assert mark == "api", f"README block calls the API but is not marked `readme-test: api`:\n{body}"
            unchecked = body.count("curl ") - body.count("curl -s --fail-with-body ")
            assert unchecked == 0, f"curl without --fail-with-body:\n{body}"
        if mark is not None and mark != "api":
            assert mark == "skip, needs a Docker engine", mark
            assert re.search(r"^\s*docker ", body, re.M), f"marked as needing Docker, but runs no docker:\n{body}"


def fresh_shell_env() -> dict[str, str]:
    """The environment of a new shell: no virtualenv on PATH, none of the caller's PCCLIP_* settings."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(part for part in os.environ.get("PATH", "").split(os.pathsep) if part != venv_bin)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PCCLIP_", "VIRTUAL_ENV"))}
    return {**env, "PATH": path}


def json_documents(text: str) -> list[object]:
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


def test_api_blocks_run_as_written(tmp_path):
    blocks = [body for mark, body in readme_blocks() if mark == "api"]
    with loopback_server({"PCCLIP_DEVICE": "cpu", "PCCLIP_INDEX_DIR": str(tmp_path / "index")}) as server:
        port = server.url.rsplit(":", 1)[1]
        for body in blocks:
            script = body.replace(API, f"localhost:{port}")
            done = subprocess.run(
                ["bash", "-eo", "pipefail", "-c", script],
                cwd=ROOT, env=fresh_shell_env(), capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, f"{body}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
            assert done.stdout.strip() and not ERROR_BODY.search(done.stdout), f"{body}\n{done.stdout}"
            if "curl " in body:
                answers = json_documents(done.stdout)
                assert len(answers) == body.count("curl "), done.stdout
