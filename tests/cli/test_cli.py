"""The `pcclip` command line, run in-process with typer's runner."""

import json

from typer.testing import CliRunner

from cli.main import cli, register

runner = CliRunner()
register()


def flat(output: str) -> str:
    """The output without whitespace or rich's box-drawing characters (messages wrap in boxes)."""
    return "".join(ch for ch in output if not ch.isspace() and ch not in "│╭╮╰╯─")


def test_help_lists_every_command():
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "train-base", "pairs", "finetune", "eval", "index", "generate"):
        assert command in result.output


def test_pairs_writes_attribute_differences_and_a_summary(tmp_path):
    out = tmp_path / "pairs.jsonl"
    result = runner.invoke(cli, ["pairs", "--source", "scenes", "--images", "30", "--limit", "40", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "pairs kept of 40 sampled" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert 30 <= len(rows) <= 40
    assert all(row["describer"] == "attributes" and row["text"].endswith(".") for row in rows)
    assert all((tmp_path / row["first"]).is_file() for row in rows)


def test_an_unknown_source_is_a_clear_error(tmp_path):
    result = runner.invoke(cli, ["pairs", "--source", "nope", "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 2
    assert "unknownsource'nope'" in flat(result.output)


def test_openai_describer_needs_a_server(tmp_path):
    result = runner.invoke(cli, ["pairs", "--source", "scenes", "--describer", "openai", "--out", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert "--base-url" in flat(result.output)


def test_serve_refuses_a_bad_model_spec_before_starting():
    result = runner.invoke(cli, ["serve", "--model", "openclip:NoSuchArch/random"])
    assert result.exit_code == 2
    assert "unknownopen_cliparchitecture'NoSuchArch'" in flat(result.output)
