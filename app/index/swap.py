"""Swapping a rebuilt index folder in for the live one, so that a crash at any point loses nothing.

Beside the live index `NAME` (`pcclip index rebuild`, see `app.index.build`):

    .NAME.rebuild   the new index while it is built (resumable)
    .NAME.new       the new index, complete: renamed from `.NAME.rebuild` — the commit point
    .NAME.old       the old index, moved aside, removed last

`swap_in` runs the steps, each a rename made durable by an fsync of the parent folder:
(1) `.NAME.rebuild` → `.NAME.new`; (2) `NAME` → `.NAME.old`; (3) `.NAME.new` → `NAME`;
(4) remove `.NAME.old`. After step 1 the rebuild is committed: a crash before it leaves the old
index standing (and the rebuild resumes when run again); a crash after it is completed by the
next open of the index, which runs under `no_swap`: it holds an flock on the parent folder,
as `swap_in` does, so an open never interleaves with a swap.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.files import fsync_dir


def staging(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.rebuild")


def _complete(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.new")


def _retired(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.old")


def swap_in(directory: Path) -> None:
    """Replace the index at `directory` with the complete rebuild in `staging(directory)`."""
    with _parent_locked(directory):
        os.replace(staging(directory), _complete(directory))
        fsync_dir(directory.parent)
        _finish(directory)


@contextmanager
def no_swap(directory: Path) -> Iterator[None]:
    """No swap of `directory` runs while this is held; one a crash interrupted is completed first."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with _parent_locked(directory):
        _finish(directory)
        yield


def _finish(directory: Path) -> None:
    """Steps 2–4 from wherever a crash stopped them (the caller holds the parent's lock)."""
    complete, retired = _complete(directory), _retired(directory)
    if complete.exists():
        if directory.exists():
            shutil.rmtree(retired, ignore_errors=True)  # a leftover of an earlier swap
            os.replace(directory, retired)
            fsync_dir(directory.parent)
        os.replace(complete, directory)
        fsync_dir(directory.parent)
    elif retired.exists() and not directory.exists():  # never left by these steps; roll back, never lose it
        os.replace(retired, directory)
        fsync_dir(directory.parent)
    if retired.exists():
        shutil.rmtree(retired)


@contextmanager
def _parent_locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
