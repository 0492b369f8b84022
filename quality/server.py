"""A real pcclip server on loopback, in a subprocess, for the quality gates and the benchmarks.

    with loopback_server({"PCCLIP_MODEL": "tiny"}) as server:
        httpx.get(f"{server.url}/ready")
        server.rss_bytes()

The server is `pcclip serve`, configured through `PCCLIP_*` environment variables exactly as an
operator runs it; its output goes to a log file that is shown when it fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


class ServerFailed(RuntimeError):
    """The server exited, or never became ready; the message carries its log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_bytes(self) -> int:
        """Resident memory of the server process now (Linux /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise ServerFailed(f"server {self.pid} has no VmRSS (exited?)")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def wait_ready(server: Server, timeout: float, require: Sequence[str] = ("index",)) -> None:
    """Until `/ready?require=…` answers 200 (the model, and the components in `require`); fails
    fast when the process exits or one of those failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServerFailed(f"server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            response = httpx.get(f"{server.url}/ready", params={"require": list(require)}, timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if response.status_code == 200:
            return
        body = response.json()
        if any(body.get(part, {}).get("state") == "failed" for part in ("model", *require)):
            raise ServerFailed(f"server not ready: {body.get('detail')}")
        time.sleep(0.2)
    raise ServerFailed(f"server not ready after {timeout:.0f} s:\n{server.log_tail()}")


@contextmanager
def loopback_server(
    settings: Mapping[str, str],
    *,
    ready_timeout: float = 600.0,
    wait: bool = True,
    require: Sequence[str] = ("index",),
) -> Iterator[Server]:
    """Start the server with these `PCCLIP_*` variables on a free 127.0.0.1 port; stop it after.

    It is yielded once ready with the components in `require` (`wait_ready`); `wait=False`
    yields as soon as the process is started (for tests of startup itself).
    """
    port = free_port()
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("PCCLIP_")}
    env = {
        **inherited,  # the server's settings are `settings` alone, not the caller's PCCLIP_* variables
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PCCLIP_LOG_LEVEL": "warning",
        **settings,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    with tempfile.TemporaryDirectory(prefix="pcclip-server-") as scratch:
        log_path = Path(scratch) / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        server = Server(f"http://127.0.0.1:{port}", process, log_path)
        try:
            if wait:
                wait_ready(server, ready_timeout, require)
            yield server
        finally:
            stop(process)


def stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
