"""The index interface the services use, its item types, and the factory that opens one.

A backend stores embeddings (unit vectors of one model) under string ids with JSON metadata and
the image each was embedded from, and answers nearest-neighbour searches by cosine similarity.
`app.index.store.IndexStore` (FAISS, embedded, durable by WAL + snapshots) is the default;
`app.index.milvus.MilvusIndex` (a Milvus collection) the other. `open_backend` chooses between
them from the settings, nowhere else: routes and services see only this interface.

Contract every backend keeps:
- `put` passes its items through `app.index.validation.checked` (a no-op for items the service
  already checked) and unit-normalizes vectors with `unit_vector` (a 422 `InvalidInput` for a
  wrong size, zero or not finite); it returns once the write is durable and searchable.
- Reads of missing ids raise `NotFound`; stored metadata that breaks the metadata rules is
  served as `{}` with `metadata_problem`, never as a failure.
- `search` returns at most `k` hits, best first; `filter` (a `app.index.filters.Filter`, or a
  raw filter, parsed with `as_filter`) keeps the items it matches; `exclude` ids are never
  returned; hits scoring below `min_score` are left out.
- `describe()` holds at least `backend`, `size`, `fingerprint`, `embed_dim`, `index_type` and
  `exact`; what else a backend can report (`deleted_rows`, `wal_records`, ...) is optional
  (see `app.schemas.index.IndexInfo`).
- Opening refuses an index made by another model with `IndexMismatch` (see `check_stamp`).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from app.errors import NotReady

if TYPE_CHECKING:
    from app.index.filters import Filter
    from app.settings import Settings


class IndexMismatch(NotReady):
    """The index was built by another model (fingerprint or embedding size differ)."""


class IndexBusy(NotReady):
    """Another process has the index open."""


class IndexCorrupt(NotReady):
    """A file of the index is damaged or missing; the message names it and says what to do."""


@dataclass(frozen=True)
class NewItem:
    """One item to put: `source` is the image file's bytes, or a path to it (CLI builds)."""

    id: str
    vector: np.ndarray  # (D,)
    metadata: dict[str, Any] = field(default_factory=dict)
    source: bytes | Path | None = None


@dataclass(frozen=True)
class Item:
    id: str
    metadata: dict[str, Any]  # {} when withheld (see `metadata_problem`)
    source: str | None  # "blob:<sha256>" or "path:<absolute path>"
    vector: np.ndarray  # (D,)
    metadata_problem: str | None = None  # why the stored metadata is withheld (it breaks the rules)


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    metadata: dict[str, Any]  # {} when withheld (see `metadata_problem`)
    vector: np.ndarray  # (D,)
    metadata_problem: str | None = None


@dataclass(frozen=True)
class PutResult:
    added: list[str]
    replaced: list[str]


class IndexBackend(Protocol):
    """What the services need of an index (thread-safe: called from the thread pool)."""

    fingerprint: str  # of the model whose embeddings the index holds
    embed_dim: int

    def put(self, items: Sequence[NewItem]) -> PutResult:
        """Add or replace items, all in one write; durable and searchable on return."""
        ...

    def delete(self, *item_ids: str) -> None:
        """Remove items, all in one write (`NotFound` when one is absent: then none is removed)."""
        ...

    def get(self, item_id: str) -> Item: ...

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Embeddings of indexed items, in order (`NotFound` naming the first absent one).  -> (N, D)"""
        ...

    def items(self) -> Iterator[Item]:
        """Every live item."""
        ...

    def source_bytes(self, source: str) -> bytes:
        """The image bytes behind an item's `source` (`OSError` when they cannot be read)."""
        ...

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        filter: Filter | Mapping[str, Any] | None = None,
        exclude: Sequence[str] = (),
        min_score: float | None = None,
    ) -> list[Hit]:
        """The `k` live items most similar to `query` (D,), best first (see the module docstring)."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, item_id: object) -> bool: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def redact(uri: str) -> str:
    """The uri without credentials (`http://user:pw@host` → `http://host`)."""
    scheme, sep, rest = uri.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else uri


def index_location(settings: Settings) -> str:
    """Where the configured index lives, for messages: its folder, or its Milvus collection."""
    if settings.index_backend == "milvus":
        return f"milvus collection {settings.milvus_collection!r} at {redact(settings.milvus_uri)}"
    return str(settings.index_dir)


def open_backend(settings: Settings, *, fingerprint: str, embed_dim: int, spec: str | None = None) -> IndexBackend:
    """Open (or create) the index the settings name (`PCCLIP_INDEX_BACKEND`), for the model with `fingerprint`.

    Raises `IndexMismatch` (another model's index: the message says what to do for the model
    `spec`), `IndexBusy`, `IndexCorrupt`, `NotReady` (Milvus unreachable, or pymilvus absent).
    """
    if settings.index_backend == "milvus":
        from app.index.milvus import MilvusIndex

        token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
        return MilvusIndex.open(
            settings.milvus_uri,
            token=token,
            collection=settings.milvus_collection,
            fingerprint=fingerprint,
            embed_dim=embed_dim,
            spec=spec,
            sources_dir=settings.sources_dir,
        )
    from app.index.ann import AnnParams
    from app.index.store import IndexStore

    return IndexStore.open(
        settings.index_dir,
        fingerprint=fingerprint,
        embed_dim=embed_dim,
        params=AnnParams.from_settings(settings),
        snapshot_every=settings.index_snapshot_every,
        spec=spec,
    )


def check_stamp(
    where: str,
    stamp: tuple[str, int],
    fingerprint: str,
    embed_dim: int | None,
    spec: str | None,
    remedy: str | None = None,
) -> None:
    """`IndexMismatch` unless the index at `where`, stamped (fingerprint, embed dim), was made
    by the model with `fingerprint` (and `embed_dim`, when given); the message says what to do:
    `remedy`, or by default the `pcclip index rebuild` command for the folder `where`."""
    built_by, built_dim = stamp
    if built_by == fingerprint and (embed_dim is None or built_dim == embed_dim):
        return
    if remedy is None:
        rebuild = shlex.join(["pcclip", "index", "rebuild", "--index-dir", where, "--model", spec or "SPEC"])
        remedy = (
            f"To re-embed it with this model, run `{rebuild}` (while no process has the folder open), then "
            "restart what refused it; or point PCCLIP_INDEX_DIR at another folder."
        )
    raise IndexMismatch(
        f"index {where} was built by model {built_by[:12]} (embed dim {built_dim}); the served model is "
        f"{spec or 'another'} ({fingerprint[:12]}, embed dim {embed_dim}). {remedy}"
    )
