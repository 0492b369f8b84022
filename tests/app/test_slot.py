"""The generic component slot: states, details, dependencies, closing."""

from __future__ import annotations

import threading

import pytest

from app.errors import InvalidInput, NotReady, Unavailable
from app.slot import Slot


class Component:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()


def slot(name: str = "thing") -> Slot[Component]:
    return Slot(name, loading=f"{name} is loading", failed=f"{name} failed to load")


def test_a_background_load_goes_from_loading_to_ready():
    release = threading.Event()
    loading = slot()
    loading.start(lambda: (release.wait(10), Component("a"))[1])
    assert loading.state == "loading" and loading.detail == "thing is loading"
    with pytest.raises(NotReady, match="thing is loading"):
        loading.require()
    release.set()
    assert loading.wait(10)
    assert loading.state == "ready" and loading.detail is None
    assert loading.require().name == "a"


@pytest.mark.parametrize(
    "error, reason",
    [(OSError("disk on fire"), "OSError: disk on fire"), (InvalidInput("built by model x"), "built by model x")],
)
def test_a_failed_load_says_why(error, reason):
    def broken() -> Component:
        raise error

    failing = slot()
    failing.start(broken)
    assert failing.wait(10)
    assert failing.state == "failed" and failing.error == reason
    with pytest.raises(NotReady, match=f"thing failed to load: {reason}"):
        failing.require()


def test_a_dependent_slot_loads_with_its_dependency_once_that_is_ready():
    model, index = slot("model"), slot("index")
    index.after(model, lambda component: Component(f"index of {component.name}"))
    assert index.state == "loading"  # waits; nothing polls
    model.install(Component("m"))
    assert index.require().name == "index of m"  # loaded in the thread that made the model ready
    late = slot("late")
    late.after(model, lambda component: Component("late"))  # the dependency is ready: loads now
    assert late.state == "ready"


def test_a_dependent_slot_stays_loading_when_its_dependency_fails():
    model, index = slot("model"), slot("index")
    index.after(model, lambda component: Component("index"))

    def broken() -> Component:
        raise RuntimeError("no weights")

    model.start(broken)
    assert model.wait(10) and model.state == "failed"
    assert index.state == "loading" and index.detail == "index is loading"


def test_close_closes_the_component_and_one_that_arrives_later():
    ready = slot()
    component = Component("a")
    ready.install(component)
    ready.close()
    assert component.closed.is_set()
    with pytest.raises(NotReady):
        ready.require()

    late, release = slot(), threading.Event()
    arriving = Component("b")
    late.start(lambda: (release.wait(10), arriving)[1])
    late.close()
    assert late.wait(0)  # waiters wake on close
    release.set()
    assert arriving.closed.wait(10)  # closed by the loader thread, never served
    assert late.value is None


def test_an_unavailable_component_is_refused_with_its_reason():
    missing: Slot[Component] = Slot.unavailable("generator", "set PCCLIP_SDXL_MODEL")
    assert missing.state == "unavailable" and missing.detail == "set PCCLIP_SDXL_MODEL"
    assert missing.wait(0)
    with pytest.raises(Unavailable, match="PCCLIP_SDXL_MODEL"):
        missing.require()
