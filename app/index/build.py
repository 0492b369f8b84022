"""Offline index work: embed a folder of images into an index (resumable), and re-embed an
index with another model from its stored sources. Used by `pcclip index build|rebuild`."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from PIL import Image
from tqdm.auto import tqdm

from app.index.ann import AnnParams
from app.index.backend import IndexBackend, Item, NewItem
from app.index.store import IndexStore
from app.index.swap import staging, swap_in
from models import Encoder
from models.images import to_rgb

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
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


def build_index(
    store: IndexBackend,
    encoder: Encoder,
    images: Sequence[tuple[str, Path]],
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> BuildSummary:
    """Embed `images` (id, path) in batches into `store`; ids already there are skipped, so
    an interrupted build resumes where it stopped. Sources are kept as paths."""
    summary = BuildSummary()
    todo = [(item_id, path) for item_id, path in images if item_id not in store]
    summary.skipped = len(images) - len(todo)
    with tqdm(total=len(todo), desc="index build", unit="image", disable=not progress) as bar:
        for batch in _batches(todo, batch_size):
            loaded = _load(batch, lambda path: Image.open(path), summary)
            if loaded:
                vectors = encoder.encode_images([image for _, image, _ in loaded]).numpy()  # (B, D)
                store.put(
                    [
                        NewItem(item_id, vectors[i], {"path": str(path)}, path)
                        for i, (item_id, _, path) in enumerate(loaded)
                    ]
                )
                summary.added += len(loaded)
            bar.update(len(batch))
    summary.size = len(store)
    return summary


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
                    loaded = _load(sources, lambda item: _open_source(old, item.source), summary)
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


def _load(batch: Iterable[tuple[str, T]], opener: Callable[[T], Image.Image], summary: BuildSummary):
    """[(id, RGB image, ref)] of the batch entries that open; failures are logged and counted."""
    loaded = []
    for item_id, ref in batch:
        try:
            with opener(ref) as image:
                image.load()  # the pixels, before the file closes
                loaded.append((item_id, to_rgb(image), ref))
        except Exception as exc:  # noqa: BLE001 — one bad file must not stop a long build
            log.warning("%s: not indexed (%s)", item_id, exc)
            summary.failed.append(item_id)
    return loaded


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
