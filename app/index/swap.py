"""Swapping a rebuilt index folder in for the live one, so that a crash at any point loses nothing.

Beside the live index `NAME` (`pcclip index rebuild`, see `app.index.build`):

    .NAME.rebuild   the new index while it is built (resumable)
    .NAME.new       the new index, complete: renamed from `.NAME.rebuild` — the commit point
    .NAME.old       the old index, moved aside, removed last

`swap_in` runs the steps, each a rename made durable by an fsync of the parent folder:
(1) `.NAME.rebuild` → `.NAME.new`; (2) `NAME` → `.NAME.old`; (3) `.NAME.new` → `NAME`;
(4) remove `.NAME.old`. `finish_swap` — run before an index folder is opened, and by
`swap_in` itself — completes a swap a crash interrupted: after step 1 the rebuild is committed
and the remaining steps run; before it the old index stands and the rebuild resumes when run
again. Both hold an flock on the parent folder, so a server that starts mid-swap waits for it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.atomic import fsync_dir


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


def finish_swap(directory: Path) -> None:
    """Complete the swap a crash interrupted, if any (see the module docstring)."""
    if not directory.parent.is_dir():
        return
    if _complete(directory).exists() or _retired(directory).exists():
        with _parent_locked(directory):
            _finish(directory)


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
    shutil.rmtree(retired, ignore_errors=True)


@contextmanager
def _parent_locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
