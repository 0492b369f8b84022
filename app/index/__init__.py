"""The search index: a durable store of embeddings with ids and metadata over FAISS."""

from app.index.ann import AnnParams
from app.index.store import Hit, IndexBusy, IndexMismatch, IndexStore, Item, NewItem, PutResult, check_id

__all__ = ["AnnParams", "Hit", "IndexBusy", "IndexMismatch", "IndexStore", "Item", "NewItem", "PutResult", "check_id"]
