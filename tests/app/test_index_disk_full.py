"""A full disk, for real: the index refuses what it cannot store and loses nothing it acknowledged.

No mocks. A child process (this file run as a script) gets a private mount namespace
(`unshare -rm`) with a 4 MiB tmpfs, fills it to the last byte and then drives the index store
and the HTTP API on it:

- a snapshot that hits ENOSPC leaves the committed snapshot byte-identical and no partial
  files; a write whose automatic snapshot fails is still acknowledged (its log record is
  durable); reopening on the still-full disk yields every acknowledged item;
- a log append (or a source image) that hits ENOSPC is refused with `StorageFull`, cut back off
  the log, and the log takes writes again once there is room;
- `POST /index/items` answers 507 with the reason, and 200 again once space is back.

The child writes what it saw to a JSON report, which the tests below check.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISK_SIZE = "4m"
DIM = 256


def _namespace_problem(probe: Path) -> str | None:
    """Why a private tmpfs cannot be mounted here, or None."""
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    probe.mkdir()
    try:
        done = subprocess.run(
            ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$1"', "sh", str(probe)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unshare failed: {error}"
    if done.returncode != 0:
        return f"cannot mount a tmpfs in a private namespace: {done.stderr.strip() or done.returncode}"
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("disk-full")
    problem = _namespace_problem(base / "probe")
    if problem:
        pytest.skip(f"needs a private tmpfs to fill for real: {problem}")
    disk, out = base / "disk", base / "report.json"
    disk.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env = {name: value for name, value in env.items() if not name.startswith("PCCLIP_")}
    script = f'mount -t tmpfs -o size={DISK_SIZE} tmpfs "$1" && exec "$2" "$3" "$1" "$4"'
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(disk), sys.executable, __file__, str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert not any(disk.iterdir())  # the tmpfs was private: nothing of it shows here
    return json.loads(out.read_text())


def test_a_snapshot_on_a_full_disk_leaves_the_last_one_intact(report):
    snap = report["snapshot"]
    assert snap["explicit_snapshot_errno"] == errno.ENOSPC
    assert snap["new_files_after_failed_snapshot"] == []  # no partial data or temp files left
    assert snap["old_snapshot_identical"] == [True, True, True]  # after each failure and after reopening
    assert snap["write_with_failed_auto_snapshot"] == "acknowledged"
    assert snap["close_with_failed_snapshot"] == "ok"
    assert snap["reopened_ids"] == snap["acknowledged_ids"]
    assert snap["reopened_vectors_equal"] is True
    assert len(snap["acknowledged_ids"]) == 200


def test_a_log_append_on_a_full_disk_is_refused_and_loses_nothing(report):
    wal = report["wal"]
    assert wal["put_on_full_disk"] == ["StorageFull", True]  # the class, and "disk full" in the message
    assert wal["log_size_unchanged"] is True
    assert wal["put_with_new_source_on_full_disk"] == ["StorageFull", True]
    assert wal["temp_files_left"] == []
    assert wal["put_after_space_is_back"] == "acknowledged"
    assert wal["reopened_ids"] == wal["acknowledged_ids"]


def test_the_api_answers_507_on_a_full_disk_and_recovers(report):
    api = report["api"]
    assert api["first"] == 200
    for case in ("new_image_on_full_disk", "known_image_on_full_disk"):  # the source write, the log append
        status, detail = api[case]
        assert status == 507 and "disk full" in detail, (case, status, detail)
    assert api["health_on_full_disk"] == 200
    assert api["after_space_is_back"] == 200
    assert api["size"] == 2
    assert api["reopened_size"] == 2


# --- the child, inside the private namespace --------------------------------------------------


def fill(disk: Path) -> Path:
    """Fill the file system of `disk` to the last byte; returns the filler file."""
    filler = disk / "filler"
    with open(filler, "ab", buffering=0) as f:
        for chunk in (1 << 16, 1 << 10, 1):
            try:
                while True:
                    f.write(b"\xff" * chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return filler


def free(filler: Path, nbytes: int) -> None:
    os.truncate(filler, max(0, filler.stat().st_size - nbytes))


def snapshot_scenario(disk: Path) -> dict:
    import numpy as np

    from app.index import IndexStore, NewItem

    folder = disk / "snap"
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((200, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = IndexStore.open(folder, fingerprint="model", embed_dim=DIM, snapshot_every=100)
    acknowledged: list[str] = []

    def put(rows: range) -> None:
        store.put([NewItem(f"item-{i}", vectors[i], {"i": i}) for i in rows])
        acknowledged.extend(f"item-{i}" for i in rows)

    put(range(100))  # the 100th log record: an automatic snapshot
    manifest = json.loads((folder / "manifest.json").read_text())
    committed = {
        name: (folder / name).read_bytes() for name in ("manifest.json", manifest["vectors"], manifest["items"])
    }
    for start in range(100, 190, 10):
        put(range(start, start + 10))

    def intact() -> bool:
        return all((folder / name).read_bytes() == data for name, data in committed.items())

    result: dict = {"old_snapshot_identical": []}
    filler = fill(disk)
    try:
        store.snapshot()
        result["explicit_snapshot_errno"] = None
    except OSError as error:
        result["explicit_snapshot_errno"] = error.errno
    result["new_files_after_failed_snapshot"] = sorted(
        path.name
        for path in folder.iterdir()
        if path.name not in committed and not path.name.startswith("wal-") and path.name not in ("LOCK", "sources")
    )
    result["old_snapshot_identical"].append(intact())

    free(filler, 64 * 1024)  # room for the log record, not for a 200 KB snapshot
    put(range(190, 200))  # the 100th record since: the snapshot fails, the write stands
    result["write_with_failed_auto_snapshot"] = "acknowledged"
    served = store.vectors(acknowledged)  # (200, DIM) what the store answered before closing
    fill(disk)
    store.close()  # its snapshot fails too: logged, and the log keeps everything
    result["close_with_failed_snapshot"] = "ok"
    result["old_snapshot_identical"].append(intact())

    with IndexStore.open(folder, fingerprint="model", embed_dim=DIM) as reopened:  # on the still-full disk
        result["reopened_ids"] = sorted(item.id for item in reopened.items())
        result["reopened_vectors_equal"] = bool(np.array_equal(reopened.vectors(acknowledged), served))
        reopened.close(snapshot=False)
    result["old_snapshot_identical"].append(intact())
    result["acknowledged_ids"] = sorted(acknowledged)
    filler.unlink()
    return result


def wal_scenario(disk: Path) -> dict:
    import numpy as np

    from app.errors import ServiceError
    from app.index import IndexStore, NewItem

    folder = disk / "wal"
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((60, DIM)).astype(np.float32)
    store = IndexStore.open(folder, fingerprint="model", embed_dim=DIM)
    store.put([NewItem(f"kept-{i}", vectors[i]) for i in range(20)])
    acknowledged = [f"kept-{i}" for i in range(20)]
    wal = next(folder.glob("wal-*.log"))
    size = wal.stat().st_size
    filler = fill(disk)
    result: dict = {}

    def refused(items: list) -> list:
        try:
            store.put(items)
        except ServiceError as error:
            return [type(error).__name__, "disk full" in error.message]
        return ["acknowledged", False]

    result["put_on_full_disk"] = refused([NewItem(f"lost-{i}", vectors[20 + i]) for i in range(30)])
    result["log_size_unchanged"] = wal.stat().st_size == size
    result["put_with_new_source_on_full_disk"] = refused(
        [NewItem("lost-source", vectors[50], source=os.urandom(20_000))]
    )
    result["temp_files_left"] = sorted(p.name for p in [*folder.glob(".*"), *(folder / "sources").glob(".*")])
    filler.unlink()  # space is back
    store.put([NewItem(f"after-{i}", vectors[51 + i]) for i in range(5)])
    acknowledged += [f"after-{i}" for i in range(5)]
    result["put_after_space_is_back"] = "acknowledged"
    store.close(snapshot=False)
    with IndexStore.open(folder, fingerprint="model", embed_dim=DIM) as reopened:
        result["reopened_ids"] = sorted(item.id for item in reopened.items())
    result["acknowledged_ids"] = sorted(acknowledged)
    return result


def api_scenario(disk: Path) -> dict:
    import base64
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from app.main import create_app
    from app.settings import Settings
    from models import create_model

    def image(colour: tuple[int, int, int]) -> dict:
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
        return {"b64": base64.b64encode(buffer.getvalue()).decode()}

    settings = Settings(_env_file=None, model="tiny-base", device="cpu", index_dir=disk / "api")
    result: dict = {}
    with TestClient(create_app(settings, encoder=create_model("tiny-base", device="cpu"))) as client:
        red = image((220, 30, 30))
        result["first"] = client.post("/index/items", json={"items": [{"id": "red", "image": red}]}).status_code
        filler = fill(disk)
        for case, items in (
            ("new_image_on_full_disk", [{"id": "blue", "image": image((30, 60, 220))}]),
            ("known_image_on_full_disk", [{"id": f"red-{i}", "image": red} for i in range(8)]),  # log only
        ):
            answer = client.post("/index/items", json={"items": items})
            result[case] = [answer.status_code, answer.json().get("detail")]
        result["health_on_full_disk"] = client.get("/health").status_code
        filler.unlink()
        answer = client.post("/index/items", json={"items": [{"id": "green", "image": image((30, 170, 40))}]})
        result["after_space_is_back"] = answer.status_code
        result["size"] = client.get("/index").json()["size"]
    with TestClient(create_app(settings, encoder=create_model("tiny-base", device="cpu"))) as client:
        result["reopened_size"] = client.get("/index").json()["size"]
    return result


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    disk_dir, report_path = Path(sys.argv[1]), Path(sys.argv[2])
    report_path.write_text(
        json.dumps(
            {"snapshot": snapshot_scenario(disk_dir), "wal": wal_scenario(disk_dir), "api": api_scenario(disk_dir)}
        )
    )
