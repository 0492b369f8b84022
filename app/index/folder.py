"""The index folder's own files: the LOCK that one process holds, and what a refused write means."""

from __future__ import annotations

import errno
import fcntl
from pathlib import Path
from typing import Any

from app.errors import NotReady, StorageFull
from app.index.backend import IndexBusy

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def write_error(directory: Path, error: OSError) -> NotReady | StorageFull:
    """The service error for a write the disk refused (nothing of it was kept)."""
    if error.errno in DISK_FULL:
        return StorageFull(f"index {directory}: disk full ({error.strerror}); the write was not stored")
    return NotReady(f"index {directory}: the write could not be stored ({error})")


def lock_folder(directory: Path) -> Any:
    """The folder's LOCK file, flock'ed (held while the store is open), or `IndexBusy`."""
    lock_file = open(directory / "LOCK", "a")  # noqa: SIM115 — held while open
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        raise IndexBusy(
            f"index {directory} is open in another process (one process owns an index folder): "
            "stop that process, or give this one a folder of its own (PCCLIP_INDEX_DIR, --index-dir)"
        ) from None
    return lock_file
