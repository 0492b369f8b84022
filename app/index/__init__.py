"""The search index: durable stores of embeddings with ids and metadata, behind `IndexBackend`."""

from app.index.ann import AnnParams
from app.index.backend import (
    Hit,
    IndexBackend,
    IndexBusy,
    IndexCorrupt,
    IndexMismatch,
    Item,
    NewItem,
    PutResult,
    index_location,
    open_backend,
)
from app.index.store import IndexStore
from app.index.validation import check_id

__all__ = [
    "AnnParams",
    "Hit",
    "IndexBackend",
    "IndexBusy",
    "IndexCorrupt",
    "IndexMismatch",
    "IndexStore",
    "Item",
    "NewItem",
    "PutResult",
    "check_id",
    "index_location",
    "open_backend",
]
