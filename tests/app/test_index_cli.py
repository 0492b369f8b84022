"""`pcclip index build` (resumable folder embedding) and `pcclip index rebuild` (re-embedding)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from apptools import make_settings, shape
from typer.testing import CliRunner

from app.commands import index_app
from app.index import IndexMismatch, IndexStore, index_location
from app.index.build import build_index, rebuild_index
from app.index.sources import folder_images, item_id_for, read_source
from app.index.wal import Record, WriteAheadLog


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "images"
    (root / "sub dir").mkdir(parents=True)
    shape("red").save(root / "red.png")
    shape("blue", "square").save(root / "sub dir" / "blue.jpg")
    shape("green", "triangle").save(root / "..odd.png")
    (root / "broken.png").write_bytes(b"not a png")
    (root / "notes.txt").write_text("not an image")
    return root


class Renamed:
    """The session encoder under another fingerprint: "another model" for rebuild tests."""

    def __init__(self, encoder, fingerprint: str) -> None:
        self._encoder, self.fingerprint = encoder, fingerprint

    def __getattr__(self, name):
        return getattr(self._encoder, name)


def test_ids_are_folder_relative_and_valid(folder):
    ids = [item_id for item_id, _ in folder_images(folder)]
    assert ids == ["_.odd.png", "broken.png", "red.png", "sub_dir:blue.jpg"]
    assert item_id_for(folder.relative_to(folder.parent) / "a" / "b.jpg") == "images:a:b.jpg"


def test_build_is_resumable_and_rebuild_reembeds_with_another_model(folder, tmp_path, encoder):
    index_dir = tmp_path / "index"
    images = read_source(folder)
    with IndexStore.open(index_dir, fingerprint=encoder.fingerprint, embed_dim=encoder.embed_dim) as store:
        first = build_index(store, encoder, images[:2], progress=False)
        assert (first.added, first.skipped, first.failed) == (1, 0, ["broken.png"])
        again = build_index(store, encoder, images, progress=False)  # resumes: skips what is there
        assert (again.added, again.skipped, again.size) == (2, 1, 3)
        red = store.get("red.png")
        assert np.allclose(red.vector, encoder.encode_images([shape("red")])[0].numpy(), atol=1e-5)

    other = Renamed(encoder, "f" * 64)
    with pytest.raises(IndexMismatch):
        IndexStore.open(index_dir, fingerprint=other.fingerprint, embed_dim=encoder.embed_dim)
    summary = rebuild_index(index_dir, other, progress=False)
    assert (summary.added, summary.size, summary.failed) == (3, 3, [])
    with IndexStore.open(index_dir, fingerprint=other.fingerprint, embed_dim=encoder.embed_dim) as store:
        assert {item.id for item in store.items()} == {"_.odd.png", "red.png", "sub_dir:blue.jpg"}
        assert store.get("red.png").metadata == {"path": str(folder / "red.png")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "index"]  # staging cleaned up


def test_rebuild_stops_when_sources_are_gone(folder, tmp_path, encoder):
    index_dir = tmp_path / "index"
    with IndexStore.open(index_dir, fingerprint=encoder.fingerprint, embed_dim=encoder.embed_dim) as store:
        build_index(store, encoder, read_source(folder), progress=False)
    (folder / "red.png").unlink()
    with pytest.raises(RuntimeError, match="no readable source"):
        rebuild_index(index_dir, Renamed(encoder, "e" * 64), progress=False)
    with IndexStore.open(index_dir, fingerprint=encoder.fingerprint) as store:  # untouched
        assert len(store) == 3
    summary = rebuild_index(index_dir, Renamed(encoder, "e" * 64), drop_missing=True, progress=False)
    assert summary.size == 2 and summary.failed == ["red.png"]


def test_rebuild_says_which_items_lose_metadata_that_breaks_the_rules(folder, tmp_path, encoder):
    index_dir = tmp_path / "index"
    with IndexStore.open(index_dir, fingerprint=encoder.fingerprint, embed_dim=encoder.embed_dim) as store:
        build_index(store, encoder, read_source(folder)[2:3], progress=False)  # red.png
        vector = store.get("red.png").vector
    wal = WriteAheadLog(next(index_dir.glob("wal-*.log")))  # an older server's write
    wal.append([Record(2, "put", "nan", {"x": float("nan")}, f"path:{folder / 'red.png'}", vector)])
    wal.close()
    summary = rebuild_index(index_dir, Renamed(encoder, "e" * 64), progress=False)
    assert summary.size == 2 and summary.metadata_dropped == ["nan"]
    assert "1 lost metadata that breaks the rules (nan)" in summary.line()
    with IndexStore.open(index_dir, fingerprint="e" * 64) as store:
        assert store.get("nan").metadata == {} and store.get("nan").metadata_problem is None


def test_the_commands_are_wired(folder, tmp_path, encoder, monkeypatch):
    monkeypatch.setattr("models.create_model", lambda spec, device="auto": encoder)
    runner = CliRunner()
    args = ["--index-dir", str(tmp_path / "index"), "--model", "tiny-base", "--device", "cpu"]
    result = runner.invoke(index_app, ["build", str(folder), *args])
    assert result.exit_code == 0, result.output
    assert "2 added" not in result.output and "3 added, 0 already indexed, 1 failed" in result.output
    result = runner.invoke(index_app, ["rebuild", *args])
    assert result.exit_code == 0 and "re-embedded" in result.output and "3 added" in result.output
    monkeypatch.setenv("PCCLIP_INDEX_BACKEND", "milvus")
    result = runner.invoke(index_app, ["rebuild", *args])
    assert result.exit_code == 1 and "does not rebuild a Milvus collection" in result.output


def test_an_index_that_cannot_be_opened_is_a_message_with_a_command_that_works(folder, tmp_path, encoder):
    index_dir = tmp_path / "index"
    args = ["--index-dir", str(index_dir), "--model", "tiny-base", "--device", "cpu"]
    with IndexStore.open(index_dir, fingerprint="f" * 64, embed_dim=encoder.embed_dim):  # another model's, held
        busy = CliRunner().invoke(index_app, ["build", str(folder), *args])
    assert busy.exit_code == 1 and "open in another process" in busy.output, busy.output
    refused = CliRunner().invoke(index_app, ["build", str(folder), *args])
    assert refused.exit_code == 1 and "built by model ffffffffffff" in refused.output, refused.output
    (hint,) = re.findall(r"`pcclip index (rebuild [^`]*)`", refused.output.replace("\n", " "))
    assert hint == f"rebuild --index-dir {index_dir} --model tiny-base"
    rebuilt = CliRunner().invoke(index_app, [*shlex.split(hint), "--device", "cpu"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert CliRunner().invoke(index_app, ["build", str(folder), *args]).exit_code == 0


class Crash(BaseException):
    """The process dies here (nothing after it runs, no handler catches it)."""


@pytest.mark.parametrize("crash", ["before rename 1", "before rename 2", "before rename 3", "after rename 3"])
def test_a_rebuild_that_crashes_mid_swap_is_completed_or_rolled_back_never_lost(
    folder, tmp_path, encoder, monkeypatch, crash
):
    index_dir = tmp_path / "index"
    with IndexStore.open(index_dir, fingerprint=encoder.fingerprint, embed_dim=encoder.embed_dim) as store:
        build_index(store, encoder, read_source(folder), progress=False)
    ids = {"_.odd.png", "red.png", "sub_dir:blue.jpg"}
    other = Renamed(encoder, "e" * 64)
    real_replace, renames = os.replace, []

    def replace(src, dst):  # the swap's renames are those of folders beside the index
        if Path(src).parent == tmp_path:
            renames.append(Path(src).name)
            if crash == f"before rename {len(renames)}":
                raise Crash
            real_replace(src, dst)
            if crash == f"after rename {len(renames)}":
                raise Crash
        else:
            real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Crash):
        rebuild_index(index_dir, other, progress=False)
    monkeypatch.setattr(os, "replace", real_replace)
    assert renames[:3] == [".index.rebuild", "index", ".index.new"][: len(renames)]

    if crash == "before rename 1":  # not committed: the old index stands, the rebuild resumes
        with IndexStore.open(index_dir, fingerprint=encoder.fingerprint) as store:
            assert {item.id for item in store.items()} == ids
        assert rebuild_index(index_dir, other, progress=False).skipped == 3
    with IndexStore.open(index_dir, fingerprint=other.fingerprint, embed_dim=encoder.embed_dim) as store:
        assert {item.id for item in store.items()} == ids  # the rebuilt index, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "index"]  # nothing left beside it


def test_messages_name_the_configured_index_a_folder_or_a_collection_without_credentials(tmp_path):
    assert index_location(make_settings(index_dir=tmp_path / "index")) == str(tmp_path / "index")
    milvus = make_settings(
        index_backend="milvus", milvus_uri="https://user:secret@milvus.example:19530", milvus_collection="photos"
    )
    assert index_location(milvus) == "milvus collection 'photos' at https://milvus.example:19530"
