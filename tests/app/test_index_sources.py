"""The one reader of `pcclip index build`'s sources: folders, JSONL and parquet listings."""

from __future__ import annotations

import json
import re

import pytest

from app.index.sources import SourceError, SourceRow, read_source


def write_jsonl(path, rows) -> None:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))


def test_a_listing_resolves_paths_makes_missing_ids_and_adds_the_path_to_metadata(tmp_path):
    listing = tmp_path / "list.jsonl"
    absolute = tmp_path / "elsewhere" / "b.png"
    write_jsonl(
        listing,
        [
            {"path": "sub dir/a.png", "metadata": {"caption": "a red circle", "path": "mine"}},
            "   ",
            {"path": str(absolute), "id": "bee"},
            {"path": "c.png", "id": "bee"},  # id taken: dropped
            {"path": str(absolute)},
        ],
    )
    assert read_source(listing) == [
        SourceRow("sub_dir:a.png", tmp_path / "sub dir" / "a.png", {"path": "mine", "caption": "a red circle"}),
        SourceRow("bee", absolute, {"path": str(absolute)}),
        SourceRow(absolute.relative_to("/").as_posix().replace("/", ":"), absolute, {"path": str(absolute)}),
    ]


def test_a_parquet_listing_reads_like_jsonl(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"path": "a.png", "id": "a", "metadata": json.dumps({"n": 1})}, {"path": "b.png", "id": None}]
    pq.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "list.parquet")
    write_jsonl(tmp_path / "list.jsonl", [{"path": "a.png", "id": "a", "metadata": {"n": 1}}, {"path": "b.png"}])
    assert read_source(tmp_path / "list.parquet") == read_source(tmp_path / "list.jsonl")
    assert read_source(tmp_path / "list.parquet")[0].metadata == {"path": str(tmp_path / "a.png"), "n": 1}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "line 2: not JSON"),
        (json.dumps(["a.png"]), 'line 2: expected an object with a "path" string'),
        (json.dumps({"id": "x"}), 'line 2: expected an object with a "path" string'),
        (json.dumps({"path": "a.png", "id": "../up"}), "line 2: id: invalid id '../up'"),
        (json.dumps({"path": "a.png", "metadata": [1]}), "line 2: metadata must be a JSON object"),
        (json.dumps({"path": "a.png", "metadata": {"x": float("inf")}}), "line 2: metadata"),
    ],
)
def test_a_bad_row_is_an_error_naming_its_line_before_anything_is_built(tmp_path, line, problem):
    listing = tmp_path / "list.jsonl"
    write_jsonl(listing, [{"path": "ok.png"}, line])
    with pytest.raises(SourceError, match=re.escape(f"list.jsonl: {problem}")):
        read_source(listing)


@pytest.mark.parametrize(
    ("name", "problem"),
    [("list.csv", "expected a folder of images or a listing"), ("missing.jsonl", "no such folder or file")],
)
def test_a_source_that_is_no_listing_is_refused(tmp_path, name, problem):
    (tmp_path / "list.csv").write_text("path\na.png\n")
    with pytest.raises(SourceError, match=problem):
        read_source(tmp_path / name)


def test_the_command_refuses_a_bad_listing_before_opening_the_index(tmp_path):
    from typer.testing import CliRunner

    from app.commands import index_app

    write_jsonl(tmp_path / "list.jsonl", [{"path": "ok.png"}, {"path": "a.png", "id": "no spaces"}])
    args = ["build", str(tmp_path / "list.jsonl"), "--index-dir", str(tmp_path / "index"), "--model", "tiny-base"]
    result = CliRunner().invoke(index_app, args, env={"COLUMNS": "1000"})  # one line per message
    assert result.exit_code == 2 and "line 2: id: invalid id 'no spaces'" in result.output, result.output
    assert not (tmp_path / "index").exists()
