"""`kill -9` a writing server at random moments, many times: every acknowledged write survives.

The server is real — uvicorn on 127.0.0.1 serving `create_app` with the tiny-base model and an
index in tmp_path — but started cheaply: a helper process (this file run as a script) loads
the model once and forks one fresh server per kill cycle, so each cycle costs the server's
startup and index recovery, not a model load.
"""

from __future__ import annotations

import base64
import io
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from quality.server import free_port

KILLS = 21
ROOT = Path(__file__).resolve().parents[2]


def tiny_png(rng: random.Random) -> dict:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), tuple(rng.randrange(256) for _ in range(3))).save(buffer, format="PNG")
    return {"b64": base64.b64encode(buffer.getvalue()).decode()}


class ServerForker:
    """Drives the helper: `serve(port)` forks a server and returns its pid."""

    def __init__(self, index_dir: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(index_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert self._read() == "loaded"

    def _read(self) -> str:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"server helper exited with {self.process.wait()}")
        return line.strip()

    def serve(self, port: int) -> int:
        self.process.stdin.write(f"serve {port}\n")
        self.process.stdin.flush()
        return int(self._read())

    def close(self) -> None:
        """Ends the helper, which kills any server it forked that is still running."""
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_ready(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", params={"require": "index"}, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"server at {base} not ready after {timeout} s")


@pytest.fixture
def forker(tmp_path):
    forker = ServerForker(tmp_path / "index")
    yield forker
    forker.close()


def test_every_acknowledged_write_survives_kill_9(forker):
    rng = random.Random(1234)
    counter = itertools.count()
    present: set[str] = set()  # acknowledged adds, not deleted since
    deleted: set[str] = set()  # acknowledged deletes
    in_doubt: set[str] = set()  # ever written without (yet) an acknowledgement
    acks = [0]
    lock = threading.Lock()

    def writer(base: str, stop: threading.Event, seed: int) -> None:
        pick = random.Random(seed)
        with httpx.Client(base_url=base, timeout=10) as http:
            while not stop.is_set():
                try:
                    if present and pick.random() < 0.15:
                        with lock:
                            victim = pick.choice(sorted(present))
                            present.discard(victim)  # in doubt until acknowledged
                            in_doubt.add(victim)
                        if http.delete(f"/index/items/{victim}").status_code == 200:
                            with lock:
                                deleted.add(victim)
                                in_doubt.discard(victim)
                                acks[0] += 1
                        continue
                    with lock:
                        ids = [f"item-{next(counter)}" for _ in range(pick.randint(1, 3))]
                        in_doubt.update(ids)
                    items = [{"id": i, "image": tiny_png(pick), "metadata": {"n": i}} for i in ids]
                    if http.post("/index/items", json={"items": items}).status_code == 200:
                        with lock:
                            present.update(ids)
                            in_doubt.difference_update(ids)
                            acks[0] += 1
                except httpx.TransportError:
                    return  # the server was killed mid-request: that write is not acknowledged

    checked: set[str] = set()
    for cycle in range(KILLS + 1):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        pid = forker.serve(port)
        wait_ready(base)
        # Recovery check: what was acknowledged before the last kill is there (each cycle the
        # new acknowledgements and every delete; the last cycle everything), nothing deleted is.
        with lock:
            expected, gone = set(present), set(deleted)
        info = httpx.get(f"{base}/index", timeout=10).json()
        assert len(expected) <= info["size"] <= len(expected) + len(in_doubt), (cycle, info)
        with httpx.Client(base_url=base, timeout=10) as http:
            for item_id in sorted(expected if cycle == KILLS else expected - checked):
                response = http.get(f"/index/items/{item_id}")
                assert response.status_code == 200, (cycle, item_id, response.text)
                assert response.json()["metadata"] == {"n": item_id}
            for item_id in sorted(gone):
                assert http.get(f"/index/items/{item_id}").status_code == 404, (cycle, item_id)
        checked |= expected
        if cycle == KILLS:
            break
        stop = threading.Event()
        writers = [threading.Thread(target=writer, args=(base, stop, rng.random()), daemon=True) for _ in range(2)]
        for thread in writers:
            thread.start()
        # Kill at a random moment after this server acknowledged something (writes keep coming).
        deadline = time.monotonic() + 60
        acked_before = acks[0]
        while acks[0] == acked_before and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(pid, signal.SIGKILL)
        stop.set()
        for thread in writers:
            thread.join(30)
    assert len(present) > KILLS  # writes did happen between the kills
    assert deleted


# --- the helper process --------------------------------------------------------------------


def _helper(index_dir: str) -> None:
    import torch

    torch.set_num_threads(1)  # no thread pool before fork
    import uvicorn

    from app.main import create_app
    from app.settings import Settings
    from models import create_model

    encoder = create_model("tiny-base", device="cpu")
    print("loaded", flush=True)
    children: list[int] = []
    for line in sys.stdin:
        port = int(line.split()[1])
        while True:  # reap killed servers
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            settings = Settings(_env_file=None, model="tiny-base", device="cpu", index_dir=index_dir, port=port)
            uvicorn.run(create_app(settings, encoder=encoder), host="127.0.0.1", port=port, log_level="warning")
            os._exit(0)
        children.append(pid)
        print(pid, flush=True)
    for pid in children:  # end of input: no server outlives the test
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


if __name__ == "__main__":
    _helper(sys.argv[1])
