"""A model API stays ready when its index cannot be served (finding 9 of issue 14).

Real `pcclip serve` processes on loopback: `tiny` on a folder stamped by `tiny-base` is ready,
reports the index failed with a hint that, pasted into a shell, fixes it. (A server on a folder
another process holds: tests/app/test_health.py.)
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import httpx
import pytest
from apptools import b64, shape

from app.index import IndexStore
from app.index.build import build_index
from app.index.sources import SourceRow
from quality.server import ROOT, loopback_server


@pytest.fixture
def stamped_by_tiny_base(tmp_path, encoder):
    """An index folder of two images embedded by the session's tiny-base (`pcclip index build`'s code)."""
    images = tmp_path / "images"
    images.mkdir()
    shape("red").save(images / "red.png")
    shape("blue", "square").save(images / "blue.png")
    index_dir = tmp_path / "index"
    with IndexStore.open(
        index_dir, fingerprint=encoder.fingerprint, embed_dim=encoder.embed_dim, spec=encoder.spec
    ) as store:
        paths = {"red": images / "red.png", "blue": images / "blue.png"}
        rows = [SourceRow(name, path, {"path": str(path)}) for name, path in paths.items()]
        build_index(store, encoder, rows, progress=False)
    return index_dir


def settings_for(index_dir) -> dict[str, str]:
    return {"PCCLIP_MODEL": "tiny", "PCCLIP_DEVICE": "cpu", "PCCLIP_INDEX_DIR": str(index_dir)}


def run_pasted(hint: str) -> subprocess.CompletedProcess:
    """Run a printed `pcclip …` command as pasted into a shell (`pcclip` is `python -m cli` here),
    from another working directory than the server's."""
    words = shlex.split(hint)
    assert words[0] == "pcclip", hint
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env = {name: value for name, value in env.items() if not name.startswith("PCCLIP_")}
    return subprocess.run(
        [sys.executable, "-m", "cli", *words[1:]], cwd="/", env=env, capture_output=True, text=True, timeout=300
    )


def search_red(url: str) -> httpx.Response:
    return httpx.post(f"{url}/search", json={"terms": [{"text": "a red circle"}], "k": 1}, timeout=30)


def test_a_model_serves_beside_an_index_of_another_model_and_the_hint_fixes_it(stamped_by_tiny_base):
    index_dir = stamped_by_tiny_base
    with loopback_server(settings_for(index_dir), require=()) as server:
        ready = httpx.get(f"{server.url}/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["ready"] is True and body["model"] == {"state": "ready", "detail": None}
        assert body["index"]["state"] == "failed" and "built by model" in body["index"]["detail"]
        assert httpx.post(f"{server.url}/embed", json={"texts": ["a red circle"]}, timeout=30).status_code == 200
        for refused in (
            search_red(server.url),
            httpx.get(f"{server.url}/index", timeout=10),
            httpx.get(f"{server.url}/index/items/red", timeout=10),
            httpx.post(f"{server.url}/rank", json={"ids": ["red", "blue"], "text": "redder"}, timeout=30),
            httpx.post(f"{server.url}/index/items", json={"items": [{"id": "x", "image": b64(shape("red"))}]}),
        ):
            assert refused.status_code == 503 and "built by model" in refused.text, refused.text
        required = httpx.get(f"{server.url}/ready", params={"require": "index"}, timeout=10)
        assert required.status_code == 503 and "built by model" in required.json()["detail"]

        hints = re.findall(r"`(pcclip index rebuild [^`]*)`", body["index"]["detail"])
        assert len(hints) == 1 and "--model tiny" in hints[0], body["index"]["detail"]
        rebuilt = run_pasted(hints[0])  # the refusing server holds no lock on the folder
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "re-embedded with tiny" in rebuilt.stdout

    with loopback_server(settings_for(index_dir), require=("index",)) as server:  # restarted
        assert httpx.get(f"{server.url}/ready", params={"require": "index"}, timeout=10).status_code == 200
        hit = search_red(server.url)
        assert hit.status_code == 200 and hit.json()["hits"][0]["id"] == "red", hit.text
