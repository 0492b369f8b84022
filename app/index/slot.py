"""The index in app state: opened once the model is loaded (its fingerprint stamps the index)."""

from __future__ import annotations

import logging
import threading
from typing import Literal

from app.errors import NotReady, ServiceError
from app.index.ann import AnnParams
from app.index.store import IndexStore
from app.settings import Settings
from models import Encoder

log = logging.getLogger(__name__)

State = Literal["loading", "ready", "failed"]


class IndexSlot:
    """States: "loading" (waiting for the model, or replaying the log) → "ready", or "failed"
    with the reason (e.g. built by another model, or open in another process). The model API
    serves whatever the index's state; the index routes answer 503 with `detail` until "ready"."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state: State = "loading"
        self.error: str | None = None
        self.store: IndexStore | None = None
        self._lock = threading.Lock()
        self._closed = False

    def open(self, encoder: Encoder) -> None:
        """Open `settings.index_dir` for `encoder` (called from the model loader thread)."""
        settings = self.settings
        try:
            store = IndexStore.open(
                settings.index_dir,
                fingerprint=encoder.fingerprint,
                embed_dim=encoder.embed_dim,
                params=AnnParams.from_settings(settings),
                snapshot_every=settings.index_snapshot_every,
                spec=encoder.spec,
            )
        except ServiceError as exc:
            log.error("index %s not opened: %s", settings.index_dir, exc.message)
            with self._lock:
                self.state, self.error = "failed", exc.message
            return
        except Exception as exc:  # noqa: BLE001 — reported by /ready; the rest of the API keeps serving
            log.exception("index %s failed to open", settings.index_dir)
            with self._lock:
                self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            if self._closed:
                store.close(snapshot=False)
                return
            self.store, self.state = store, "ready"

    @property
    def detail(self) -> str | None:
        if self.state == "loading":
            return f"index {self.settings.index_dir} is not open yet (it opens once the model is loaded)"
        if self.state == "failed":
            return f"index {self.settings.index_dir} unavailable: {self.error}"
        return None

    def require(self) -> IndexStore:
        store = self.store
        if store is None:
            raise NotReady(self.detail or "index not open")
        return store

    def close(self) -> None:
        with self._lock:
            self._closed = True
            store, self.store = self.store, None
        if store is not None:
            store.close()
