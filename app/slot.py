"""A component of the app (the engine, the index, the generator) as it comes up and goes down.

States: "loading" → "ready", or "loading" → "failed" with the reason; "unavailable" for a
component the operator did not configure. A slot loads its component in a background thread
(`start`), installs one that is ready now (`install`), or loads it once another slot's component
is ready (`after`: in the thread that made it ready — no polling). Routes `require()` the
component: `NotReady` (→ 503) with `detail` until it is ready. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, Literal, TypeVar

from app.errors import NotReady, ServiceError, Unavailable

log = logging.getLogger(__name__)

State = Literal["unavailable", "loading", "ready", "failed"]
T = TypeVar("T")
D = TypeVar("D")


def _close(component) -> None:
    component.close()


class Slot(Generic[T]):
    """Holds one component; `loading` and `failed` are the words of `detail` in those states
    (the reason follows `failed`); `close` closes a component (by default its `close()`)."""

    def __init__(
        self, name: str, *, loading: str, failed: str, close: Callable[[T], None] = _close
    ) -> None:
        self.name = name
        self._loading, self._failed, self._close = loading, failed, close
        self._lock = threading.Lock()
        self._settled = threading.Event()  # ready, failed or closed
        self._waiting: list[Callable[[T], None]] = []  # loaders of the slots that come `after` this one
        self._closed = False
        self._unavailable: str | None = None
        self.state: State = "loading"
        self.error: str | None = None
        self.value: T | None = None  # the component once ready

    @classmethod
    def unavailable(cls, name: str, reason: str) -> Slot[T]:
        """A slot for a component that is not configured: `require()` raises `Unavailable(reason)`."""
        slot: Slot[T] = cls(name, loading=reason, failed=reason)
        slot.state, slot._unavailable = "unavailable", reason
        slot._settled.set()
        return slot

    # --- loading ---------------------------------------------------------------------------

    def start(self, load: Callable[[], T]) -> None:
        """Run `load` in a background thread; the slot is ready with its result, or failed."""
        threading.Thread(target=self._load, args=(load,), name=f"pcclip-{self.name}-loader", daemon=True).start()

    def after(self, dependency: Slot[D], load: Callable[[D], T]) -> None:
        """Load with `load(dependency's component)` once `dependency` is ready: now if it is,
        else in the thread that makes it ready. While it is not, this slot stays "loading"."""
        dependency._when_ready(lambda component: self._load(lambda: load(component)))

    def install(self, component: T) -> None:
        """Ready with `component` now (closed at once if the slot was closed meanwhile)."""
        with self._lock:
            closed = self._closed
            if not closed:
                self.value, self.state = component, "ready"
                waiting, self._waiting = self._waiting, []
        if closed:
            self._close(component)
            return
        self._settled.set()
        log.info("%s ready", self.name)
        for load in waiting:
            load(component)

    def _load(self, load: Callable[[], T]) -> None:
        try:
            component = load()
        except Exception as exc:  # noqa: BLE001 — reported by /ready; the rest of the app keeps serving
            if isinstance(exc, ServiceError):
                log.error("%s failed: %s", self.name, exc.message)
            else:
                log.exception("%s failed", self.name)
            with self._lock:
                self.state, self.error = "failed", reason(exc)
            self._settled.set()
            return
        self.install(component)

    def _when_ready(self, load: Callable[[T], None]) -> None:
        with self._lock:
            component = self.value
            if component is None:
                self._waiting.append(load)
                return
        load(component)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the slot is ready, failed or closed (False on timeout)."""
        return self._settled.wait(timeout)

    # --- serving ---------------------------------------------------------------------------

    @property
    def detail(self) -> str | None:
        """Why the component is not served, or None."""
        if self.state == "unavailable":
            return self._unavailable
        if self.state == "loading":
            return self._loading
        if self.state == "failed":
            return f"{self._failed}: {self.error}"
        return None

    def require(self) -> T:
        component = self.value
        if component is None:
            error = Unavailable if self.state == "unavailable" else NotReady
            raise error(self.detail or f"{self.name} not loaded")
        return component

    def close(self) -> None:
        """Close the component (one still loading is closed once it is ready); wake the waiters."""
        with self._lock:
            self._closed = True
            component, self.value = self.value, None
            self._waiting = []
        self._settled.set()
        if component is not None:
            self._close(component)


def reason(exc: Exception) -> str:
    """What /ready says about a failed load: a service error's message, else the exception."""
    return exc.message if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
