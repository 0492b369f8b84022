"""Offline index work: embed a folder of images into an index (resumable), and re-embed an
index with another model from its stored sources. Used by `pcclip index build|rebuild`."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from PIL import Image
from tqdm.auto import tqdm

from app.index.ann import AnnParams
from app.index.backend import IndexBackend, Item, NewItem
from app.index.sources import SourceRow
from app.index.store import IndexStore
from app.index.swap import staging, swap_in
from models import Encoder
from models.images import decode_upright

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class BuildSummary:
    added: int = 0
    skipped: int = 0  # already indexed (resumed)
    failed: list[str] = field(default_factory=list)  # unreadable images / missing sources
    metadata_dropped: list[str] = field(default_factory=list)  # rebuilt without metadata that breaks the rules
    size: int = 0

    def line(self) -> str:
        dropped = self.metadata_dropped
        lost = f", {len(dropped)} lost metadata that breaks the rules ({', '.join(dropped[:5])})" if dropped else ""
        return (
            f"{self.added} added, {self.skipped} already indexed, {len(self.failed)} failed{lost}; "
            f"the index holds {self.size} items"
        )


def build_index(
    store: IndexBackend,
    encoder: Encoder,
    rows: Sequence[SourceRow],
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> BuildSummary:
    """Embed `rows` (see `app.index.sources`) in batches into `store`; ids already there are
    skipped, so an interrupted build resumes where it stopped. Sources are kept as paths."""
    summary = BuildSummary()
    todo = todo_rows(store, rows, summary)
    with tqdm(total=len(todo), desc="index build", unit="image", disable=not progress) as bar:
        for batch in _batches(todo, batch_size):
            rows_of_batch = [(row.id, row) for row in batch]
            loaded = load_images(rows_of_batch, lambda row: Image.open(row.path), summary, encoder.input_side)
            if loaded:
                vectors = encoder.encode_images([image for _, image, _ in loaded]).numpy()  # (B, D)
                store.put([NewItem(row.id, vectors[i], row.metadata, row.path) for i, (_, _, row) in enumerate(loaded)])
                summary.added += len(loaded)
            bar.update(len(batch))
    summary.size = store.describe()["size"]
    return summary


def todo_rows(store: IndexBackend, rows: Sequence[SourceRow], summary: BuildSummary) -> list[SourceRow]:
    """The rows whose id is not indexed yet (the others are counted as skipped: a resumed build)."""
    todo = [row for row in rows if row.id not in store]
    summary.skipped = len(rows) - len(todo)
    return todo


def rebuild_index(
    directory: Path,
    encoder: Encoder,
    *,
    params: AnnParams | None = None,
    batch_size: int = 32,
    drop_missing: bool = False,
    progress: bool = True,
) -> BuildSummary:
    """Re-embed every item of the index at `directory` with `encoder`, from its stored sources.

    The new index is built beside it (`.NAME.rebuild`, resumable) and swapped in by renames
    once complete, crash-safely (`app.index.swap`); items whose source cannot be read abort the
    rebuild unless `drop_missing`.
    """
    directory = Path(directory)
    new_dir = staging(directory)
    old = IndexStore.open(directory, fingerprint=None)  # first completes a swap a crash interrupted
    try:
        new = IndexStore.open(new_dir, fingerprint=encoder.fingerprint, embed_dim=encoder.embed_dim, params=params)
        summary = BuildSummary()
        try:
            items = list(old.items())
            todo = [item for item in items if item.id not in new]
            summary.skipped = len(items) - len(todo)
            with tqdm(total=len(todo), desc="index rebuild", unit="image", disable=not progress) as bar:
                for batch in _batches(todo, batch_size):
                    sources = [(item.id, item) for item in batch]
                    loaded = load_images(
                        sources, lambda item: _open_source(old, item.source), summary, encoder.input_side
                    )
                    if loaded:
                        vectors = encoder.encode_images([image for _, image, _ in loaded]).numpy()
                        new.put(
                            [
                                NewItem(item.id, vectors[i], item.metadata, _source_of(old, item.source))
                                for i, (_, _, item) in enumerate(loaded)
                            ]
                        )
                        summary.added += len(loaded)
                        _note_dropped_metadata([item for _, _, item in loaded], summary)
                    bar.update(len(batch))
            if summary.failed and not drop_missing:
                raise RuntimeError(
                    f"{len(summary.failed)} items have no readable source (e.g. {summary.failed[:3]}); "
                    f"the old index is untouched and the partial rebuild kept in {new_dir} (resumable). "
                    "Pass --drop-missing to leave them out."
                )
            summary.size = len(new)
        finally:
            new.close()
        swap_in(directory)  # the old index's LOCK still held: no server opens it mid-swap
    finally:
        old.close(snapshot=False)
    return summary


def _note_dropped_metadata(items: Iterable[Item], summary: BuildSummary) -> None:
    """Items the old index served with withheld metadata (it breaks the rules) are rebuilt with {}."""
    for item in items:
        if item.metadata_problem is not None:
            log.warning("%s: its stored metadata is not carried over: %s", item.id, item.metadata_problem)
            summary.metadata_dropped.append(item.id)


def _open_source(store: IndexStore, source: str | None) -> Image.Image:
    if source is None:
        raise FileNotFoundError("no stored source")
    return Image.open(io.BytesIO(store.source_bytes(source)))


def _source_of(store: IndexStore, source: str | None) -> bytes | Path | None:
    if source is None:
        return None
    kind, _, ref = source.partition(":")
    return Path(ref) if kind == "path" else store.source_bytes(source)


def load_images(
    batch: Iterable[tuple[str, T]],
    opener: Callable[[T], Image.Image],
    summary: BuildSummary,
    side: int | None = None,
):
    """[(id, RGB image, ref)] of the batch entries that open, decoded as the server decodes
    (`decode_upright`, towards the model's input `side`); failures are logged and counted."""
    loaded = []
    for item_id, ref in batch:
        try:
            with opener(ref) as image:
                loaded.append((item_id, decode_upright(image, side), ref))  # the pixels, before the file closes
        except Exception as exc:  # noqa: BLE001 — one bad file must not stop a long build
            log.warning("%s: not indexed (%s)", item_id, exc)
            summary.failed.append(item_id)
    return loaded


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
