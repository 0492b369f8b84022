"""What `pcclip index build` reads: a folder of images, or a JSONL or parquet listing of them.

Every engine (local and Ray) reads its source here, as a list of `SourceRow`s:

- a folder: every image under it (sorted by path); the id is the folder-relative path
  (`forest/17.jpg` → `forest:17.jpg`, see `item_id_for`), the metadata `{"path": ...}`;
- a `.jsonl` file: one JSON object a line, `{"path": ..., "id"?: ..., "metadata"?: {...}}`;
- a `.parquet` file: the same columns (`metadata` a struct or a JSON string).

In a listing a relative `path` is relative to the listing's folder; a missing `id` is made from
the path as written, as for a folder; the metadata is `{"path": <absolute path>}` updated with
the row's own. Rows are checked before anything is embedded (ids, metadata rules): a bad row is
an error naming its line, not a failure halfway through a build. A later row with an id already
taken is dropped with a warning.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import InvalidInput
from app.index.metadata import metadata_problem
from app.index.store import check_id

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
LISTING_SUFFIXES = (".jsonl", ".parquet")


class SourceError(ValueError):
    """A source that cannot be read as a listing of images (says which row and why)."""


@dataclass(frozen=True)
class SourceRow:
    id: str
    path: Path  # absolute
    metadata: dict[str, Any]


def item_id_for(relative: Path) -> str:
    """A folder-relative image path → an id: parts joined by ':', other characters → '_'.
    `forest/17.jpg` → `forest:17.jpg`."""
    parts = [re.sub(r"[^A-Za-z0-9._@+=-]", "_", part) for part in relative.parts]
    item_id = ":".join(re.sub(r"\.(?=\.)", "_", part) for part in parts)  # no '..'
    return item_id if re.match(r"[A-Za-z0-9_]", item_id) else "_" + item_id


def folder_images(folder: Path, *, recursive: bool = True) -> list[tuple[str, Path]]:
    """(id, path) of the images under `folder`, sorted by path; later duplicates of an id dropped."""
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    found: dict[str, Path] = {}
    for path in sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        item_id = item_id_for(path.relative_to(folder))
        if item_id in found:
            log.warning("%s: id %r already taken by %s; skipped", path, item_id, found[item_id])
            continue
        found[item_id] = path
    return list(found.items())


def read_source(source: Path, *, recursive: bool = True) -> list[SourceRow]:
    """The rows of a folder, `.jsonl` or `.parquet` source (see the module docstring)."""
    source = Path(source)
    if source.is_dir():
        images = folder_images(source, recursive=recursive)
        return [SourceRow(item_id, path.absolute(), {"path": str(path.absolute())}) for item_id, path in images]
    if not source.is_file():
        raise SourceError(f"{source}: no such folder or file")
    if source.suffix.lower() == ".jsonl":
        return _listing_rows(_jsonl_rows(source), source)
    if source.suffix.lower() == ".parquet":
        return _listing_rows(_parquet_rows(source), source)
    raise SourceError(f"{source}: expected a folder of images or a listing ending in {' or '.join(LISTING_SUFFIXES)}")


def _jsonl_rows(source: Path) -> Iterable[tuple[str, Any]]:
    """("line N", parsed object) of each non-blank line."""
    with source.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    yield f"line {number}", json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError(f"{source}: line {number}: not JSON ({exc})") from None


def _parquet_rows(source: Path) -> Iterable[tuple[str, Any]]:
    """("row N", dict) of each parquet row; pyarrow comes with the `ray` extra."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SourceError(f"{source}: reading parquet needs pyarrow: pip install 'pcclip[ray]'") from None
    for number, row in enumerate(pq.read_table(source).to_pylist(), 1):
        yield f"row {number}", row


def _listing_rows(rows: Iterable[tuple[str, Any]], source: Path) -> list[SourceRow]:
    found: dict[str, SourceRow] = {}
    for where, row in rows:
        try:
            parsed = _parse_row(row, source.parent)
        except (InvalidInput, TypeError, ValueError) as exc:
            raise SourceError(f"{source}: {where}: {exc}") from None
        if parsed.id in found:
            log.warning("%s: %s: id %r already taken by %s; skipped", source, where, parsed.id, found[parsed.id].path)
            continue
        found[parsed.id] = parsed
    return list(found.values())


def _parse_row(row: Any, base: Path) -> SourceRow:
    if not isinstance(row, Mapping) or not isinstance(row.get("path"), str) or not row["path"]:
        raise ValueError('expected an object with a "path" string (and optional "id", "metadata")')
    written = Path(row["path"])
    path = (base / written).absolute()
    item_id = row.get("id")
    if item_id is None:
        item_id = item_id_for(written.relative_to(written.anchor) if written.is_absolute() else written)
    check_id(item_id, "id")
    extra = row.get("metadata")
    if isinstance(extra, str):
        extra = json.loads(extra)
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError(f"metadata must be a JSON object, not {type(extra).__name__}")
    metadata = {"path": str(path), **(extra or {})}
    if problem := metadata_problem(metadata):
        raise ValueError(f"metadata {problem}")
    return SourceRow(item_id, path, metadata)
