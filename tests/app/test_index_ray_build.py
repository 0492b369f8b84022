"""`pcclip index build --engine ray`: a real local Ray (2 CPUs, fractional actors) builds what the
sequential build does, and a build killed with `kill -9` resumes (from a JSONL run to a parquet one)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.index import IndexStore
from app.index.build import build_index
from app.index.ray_build import RayOptions, build_index_ray, require_ray
from app.index.sources import read_source
from app.index.wal import read_records

ROOT = Path(__file__).resolve().parents[2]
IMAGES = 1000
POOL = RayOptions(num_cpus=0.5, actors=2, batch_size=32)  # fractional CPUs: whole ones stall 2 cores
ONE_ACTOR = RayOptions(num_cpus=0.5, actors=1, batch_size=32)  # each actor's model load costs seconds


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray for the module: 2 CPUs, no dashboard; its address for drivers in subprocesses."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    context = ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    yield context.address_info["address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """IMAGES drawn images (colours, shapes, sizes and positions vary, so vectors differ) and two
    files that do not decode."""
    root = tmp_path_factory.mktemp("ray-images")
    rng = random.Random(0)
    for i in range(IMAGES):
        image = Image.new("RGB", (32, 32), tuple(rng.randrange(256) for _ in range(3)))
        x, y, size = rng.randrange(20), rng.randrange(20), 6 + rng.randrange(12)
        draw = [ImageDraw.Draw(image).ellipse, ImageDraw.Draw(image).rectangle][i % 2]
        draw((x, y, x + size, y + size), fill=tuple(rng.randrange(256) for _ in range(3)))
        image.save(root / f"{i:04d}.png")
    (root / "broken.png").write_bytes(b"not a png")
    (root / "truncated.png").write_bytes((root / "0000.png").read_bytes()[:40])
    return root


def open_store(directory: Path, encoder) -> IndexStore:
    return IndexStore.open(directory, fingerprint=encoder.fingerprint, embed_dim=encoder.embed_dim, spec=encoder.spec)


def contents(directory: Path, encoder) -> dict[str, tuple[dict, np.ndarray]]:
    with open_store(directory, encoder) as store:
        return {item.id: (item.metadata, item.vector) for item in store.items()}


def assert_same(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    assert all(got[i][0] == expected[i][0] for i in expected)
    vectors, reference = (np.stack([items[i][1] for i in sorted(expected)]) for items in (got, expected))
    np.testing.assert_allclose(vectors, reference, atol=1e-5)


def test_a_ray_build_indexes_what_the_sequential_build_does(ray_address, images, tmp_path, encoder):
    rows = read_source(images)
    with open_store(tmp_path / "local", encoder) as store:
        local = build_index(store, encoder, rows, progress=False)
    with open_store(tmp_path / "ray", encoder) as store:
        summary = build_index_ray(store, encoder, rows, POOL, progress=False)
    assert (summary.added, summary.skipped, summary.size) == (IMAGES, 0, IMAGES)
    assert sorted(summary.failed) == sorted(local.failed) == ["broken.png", "truncated.png"]
    assert_same(contents(tmp_path / "ray", encoder), contents(tmp_path / "local", encoder))


def test_a_killed_build_resumes_without_duplicates(ray_address, images, tmp_path, encoder):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    paths = sorted(images.glob("0*.png"))
    rows = [{"path": path.name, "id": f"img-{path.stem}", "metadata": {"n": n}} for n, path in enumerate(paths)]
    (images / "listing.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    pq.write_table(pyarrow.Table.from_pylist(rows), images / "listing.parquet")  # the same rows
    index_dir = tmp_path / "index"
    # 1. The CLI on the JSONL, as its own Ray driver on the module's cluster, killed once 200 items are logged
    flags = ["--index-dir", str(index_dir), "--model", "tiny-base", "--batch-size", "16"]
    ray_flags = ["--engine", "ray", "--actors", "1", "--ray-address", ray_address]
    command = [sys.executable, "-m", "cli", "index", "build", str(images / "listing.jsonl"), *flags, *ray_flags]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with (tmp_path / "build.log").open("wb") as output:
        build = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    logged = wait_for_logged(index_dir, 200, build, tmp_path / "build.log")
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert logged < IMAGES, "the build finished before it could be killed"
    # 2. Rerun on the parquet: only the rest is embedded (`added` counts every put), each item once
    with open_store(index_dir, encoder) as store:
        before = store.describe()["size"]
        summary = build_index_ray(store, encoder, read_source(images / "listing.parquet"), ONE_ACTOR, progress=False)
        done = build_index_ray(store, encoder, read_source(images / "listing.jsonl"), ONE_ACTOR, progress=False)
    assert (done.skipped, done.added, done.size) == (IMAGES, 0, IMAGES)  # a finished build has nothing left
    assert before >= 200 and (summary.skipped, summary.added, summary.size) == (before, IMAGES - before, IMAGES)
    got = contents(index_dir, encoder)
    assert sorted(got) == [row["id"] for row in rows]
    assert got["img-0007"][0] == {"path": str(images / "0007.png"), "n": 7}
    expected = encoder.encode_images([Image.open(path).convert("RGB") for path in paths]).numpy()  # (N, D)
    np.testing.assert_allclose(np.stack([got[row["id"]][1] for row in rows]), expected, atol=1e-5)


def wait_for_logged(index_dir: Path, count: int, process: subprocess.Popen, output: Path, timeout: float = 300) -> int:
    """Items put in the index's write-ahead log so far, once there are at least `count`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logged = sum(1 for log in index_dir.glob("wal-*.log") for record in read_records(log) if record.op == "put")
        if logged >= count:
            return logged
        if process.poll() is not None:
            pytest.fail(f"the build exited with {process.returncode}: {output.read_text()[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"fewer than {count} items logged after {timeout} s")


def test_without_ray_the_error_names_the_extra():
    with pytest.raises(ImportError, match=r"pip install 'pcclip\[ray\]'") as caught:
        require_ray("ray_data_that_is_not_installed")
    assert "ray_data_that_is_not_installed" in str(caught.value)
