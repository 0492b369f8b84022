"""The README's configuration reference, generated from `app.settings.Settings` so it cannot drift.

    python -m app.config_reference              # print the table
    python -m app.config_reference --write README.md   # rewrite the section between the markers
    python -m app.config_reference --check README.md   # exit 1 when the section is stale

`make config-reference` runs the `--write` form; `tests/app/test_config_reference.py` fails when
README.md and the settings class disagree.
"""

from __future__ import annotations

import argparse
import sys
import types
from enum import Enum
from pathlib import Path
from typing import Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from app.settings import Settings

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"


def env_name(settings_cls: type[BaseSettings], name: str) -> str:
    """The environment variable of field `name`, e.g. `model` → `PCCLIP_MODEL`."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    return f"{prefix}{name}".upper()


def render_default(field: FieldInfo) -> str:
    """A field's default as an operator would type it: `tiny`, `8000`, `false`; *unset* for None."""
    default = field.get_default(call_default_factory=True)
    if default is None:
        return "*unset*"
    if isinstance(default, bool):
        text = "true" if default else "false"
    elif isinstance(default, Enum):
        text = str(default.value)
    else:
        text = str(default)
    return f"`{text}`" if text else '`""`'


def choices(field: FieldInfo) -> list[str]:
    """The allowed values of a `Literal[...]` (or `Literal[...] | None`) field; [] for other types."""
    annotation = field.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next((arg for arg in get_args(annotation) if get_origin(arg) is Literal), annotation)
    return [str(value) for value in get_args(annotation)] if get_origin(annotation) is Literal else []


def render_description(field: FieldInfo) -> str:
    """The field's description, plus its allowed values when it has a fixed set the text does not list."""
    text = field.description or ""
    values = choices(field)
    if values and not all(f"`{value}`" in text for value in values):
        text = f"{text} One of {', '.join(f'`{value}`' for value in values)}."
    return _cell(text)


def _cell(text: str) -> str:
    """Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def render_table(settings_cls: type[BaseSettings] = Settings) -> str:
    """Markdown table of every setting, in declaration order: env var, default, description."""
    rows = ["| variable | default | description |", "| --- | --- | --- |"]
    for name, field in settings_cls.model_fields.items():
        if not field.description:
            raise ValueError(f"setting {name!r} has no description; the reference needs one")
        rows.append(f"| `{env_name(settings_cls, name)}` | {render_default(field)} | {render_description(field)} |")
    return "\n".join(rows) + "\n"


def replace_section(document: str, content: str) -> str:
    """`document` with the text between START and END replaced by `content` (markers kept)."""
    head, found_start, rest = document.partition(START)
    _, found_end, tail = rest.partition(END)
    if not found_start or not found_end:
        raise ValueError(f"markers {START} … {END} not found (in that order)")
    if START in tail or END in tail:
        raise ValueError(f"markers {START} … {END} must appear exactly once")
    return f"{head}{START}\n{content}{END}{tail}"


def extract_section(document: str) -> str:
    """The text between START and END (without the newline after START)."""
    _, found_start, rest = document.partition(START)
    section, found_end, _ = rest.partition(END)
    if not found_start or not found_end:
        raise ValueError(f"markers {START} … {END} not found (in that order)")
    return section.removeprefix("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.config_reference", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", type=Path, metavar="FILE", help="rewrite the section between the markers")
    action.add_argument("--check", type=Path, metavar="FILE", help="exit 1 when the section is out of date")
    args = parser.parse_args(argv)
    table = render_table()
    if args.write:
        document = args.write.read_text(encoding="utf-8")
        updated = replace_section(document, table)
        if updated != document:
            args.write.write_text(updated, encoding="utf-8")
        print(f"{args.write}: configuration reference {'updated' if updated != document else 'already current'}")
    elif args.check:
        if extract_section(args.check.read_text(encoding="utf-8")) != table:
            print(f"{args.check}: configuration reference is stale; run `make config-reference`", file=sys.stderr)
            return 1
        print(f"{args.check}: configuration reference is current")
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
