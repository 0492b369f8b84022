"""The snapshot format alone: the manifest (typed, round-tripped, older formats read, malformed
ones refused with the reason) and the segment files with their checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.errors import NotReady
from app.index.backend import IndexCorrupt
from app.index.metadata import METADATA_RULES
from app.index.snapshot import (
    Manifest,
    Segment,
    SegmentRows,
    fresh_name,
    read_manifest,
    read_segment,
    verify,
    write_manifest,
    write_segment,
)

DIM = 4


def manifest_with_deltas() -> Manifest:
    base = Segment("vectors-000000000010.npy", "items-000000000010.json")
    delta = Segment("vectors-000000000015.npy", "items-000000000015.json")
    return Manifest(
        "model", DIM, 15, base, "ann-000000000010.faiss", (delta,), {base.items: "ab" * 32}, "hnsw", 12, 1.5
    )


def test_a_manifest_round_trips_and_names_its_files(tmp_path):
    manifest = manifest_with_deltas()
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    body = json.loads((tmp_path / "manifest.json").read_text())
    assert (body["format"], body["vectors"], body["deltas"][0]["items"]) == (
        2,
        "vectors-000000000010.npy",
        "items-000000000015.json",
    )
    assert manifest.files == [
        "vectors-000000000010.npy",
        "items-000000000010.json",
        "vectors-000000000015.npy",
        "items-000000000015.json",
        "ann-000000000010.faiss",
    ]


def test_a_format_1_manifest_is_read_as_a_base_alone(tmp_path):
    older = {
        "format": 1,
        "fingerprint": "model",
        "embed_dim": DIM,
        "seq": 7,
        "vectors": "vectors-000000000007.npy",
        "items": "items-000000000007.json",
        "ann": None,
        "sha256": {},
        "index_type": "flat",
        "size": 3,
        "written_at": 0,
    }
    (tmp_path / "manifest.json").write_text(json.dumps(older))
    manifest = read_manifest(tmp_path)
    assert (
        manifest.format == 1
        and manifest.deltas == ()
        and manifest.segments == (Segment(older["vectors"], older["items"]),)
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"vectors": "../elsewhere.npy"}, "not a data file name"),
        ({"items": "wal-000000000001.log"}, "not a data file name"),
        ({"deltas": {"vectors": "x"}}, "'deltas' is not a list"),
        ({"deltas": [{"vectors": "vectors-000000000001.npy"}]}, "'items' is not a data file name"),
        ({"embed_dim": "4"}, "'embed_dim' is missing or malformed"),
        ({"sha256": []}, "malformed"),
    ],
)
def test_a_malformed_manifest_is_refused_with_the_reason(tmp_path, change, words):
    body = {**json.loads(manifest_with_deltas().to_json()), **change}
    (tmp_path / "manifest.json").write_text(json.dumps(body))
    with pytest.raises(IndexCorrupt, match=words):
        read_manifest(tmp_path)


def test_a_newer_format_is_refused_not_half_read(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({**json.loads(manifest_with_deltas().to_json()), "format": 3}))
    with pytest.raises(NotReady, match="has format 3"):
        read_manifest(tmp_path)


def test_no_manifest_is_no_index_unless_data_files_lie_there(tmp_path):
    assert read_manifest(tmp_path) is None
    (tmp_path / "vectors-000000000001.npy").write_bytes(b"")
    with pytest.raises(IndexCorrupt, match="is missing, but the folder holds index data"):
        read_manifest(tmp_path)


def rows(n: int, start: int = 0, **extra) -> SegmentRows:
    vectors = np.arange(n * DIM, dtype=np.float32).reshape(n, DIM)
    ids = [f"x{start + i}" for i in range(n)]
    return SegmentRows(vectors, ids, [{"i": start + i} for i in range(n)], [None] * n, **extra)


def test_a_segment_round_trips_and_its_checksums_catch_damage(tmp_path):
    written = rows(3, withheld={}, dead=[0, 1])
    segment, digests = write_segment(tmp_path, written, 9, taken=[])
    back = read_segment(tmp_path, segment, DIM)
    assert np.array_equal(back.vectors, written.vectors) and back.ids == written.ids and back.dead == [0, 1]
    assert back.withheld == {}  # written under today's rules: no row to check again
    manifest = Manifest("model", DIM, 9, segment, sha256=digests)
    verify(tmp_path, manifest)
    path = tmp_path / segment.vectors
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(IndexCorrupt, match="does not match the sha256"):
        verify(tmp_path, manifest)
    path.unlink()
    with pytest.raises(IndexCorrupt, match="is missing"):
        verify(tmp_path, manifest)


def test_a_segment_written_under_other_rules_has_every_row_checked_again(tmp_path):
    segment, _ = write_segment(tmp_path, rows(2, withheld={}), 3, taken=[])
    path = tmp_path / segment.items
    body = json.loads(path.read_text())
    assert body["metadata_rules"] == METADATA_RULES
    path.write_text(json.dumps({key: body[key] for key in ("ids", "metadata", "sources")}))  # an older server's
    assert read_segment(tmp_path, segment, DIM).withheld is None


def test_a_segment_that_does_not_fit_is_refused(tmp_path):
    segment, _ = write_segment(tmp_path, rows(2, withheld={}), 3, taken=[])
    with pytest.raises(IndexCorrupt, match="vectors of shape"):
        read_segment(tmp_path, segment, DIM + 1)
    assert read_segment(tmp_path, segment, DIM, vectors=False).vectors is None


def test_fresh_names_never_reuse_a_committed_one():
    taken = ["vectors-000000000005.npy", "vectors-000000000005.1.npy"]
    assert fresh_name("vectors", 5, "npy", taken) == "vectors-000000000005.2.npy"
    assert fresh_name("items", 5, "json", taken) == "items-000000000005.json"
