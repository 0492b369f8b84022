"""The index as the server opens it (the folder or Milvus collection the settings name), for the
served model's fingerprint."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.index.backend import IndexBackend, index_location, open_backend
from app.settings import Settings
from app.slot import Slot

if TYPE_CHECKING:
    from app.engine import Engine


def open_index(settings: Settings, engine: Engine) -> IndexBackend:
    """Open (or create) the configured index for `engine`'s model; `IndexMismatch` when another made it."""
    return open_backend(settings, fingerprint=engine.fingerprint, embed_dim=engine.embed_dim, spec=engine.spec)


def index_slot(settings: Settings, model: Slot[Engine]) -> Slot[IndexBackend]:
    """The index's slot: "loading" until the model is ready (its fingerprint stamps the index),
    then open, or "failed" with the reason (e.g. built by another model, or open in another
    process). The model API serves whatever the index's state."""
    where = index_location(settings)
    slot: Slot[IndexBackend] = Slot(
        "index",
        loading=f"index {where} is not open yet (it opens once the model is loaded)",
        failed=f"index {where} unavailable",
    )
    slot.after(model, lambda engine: open_index(settings, engine))
    return slot
