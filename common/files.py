"""File helpers every package may use: durable replacement and content hashes.

`write_atomic` writes a temp file beside the target, fsyncs it, renames it over the target and
fsyncs the folder (so the rename itself survives power loss): a reader sees the old file or the
whole new one, never a mix. A failed write (e.g. disk full) removes its temp file, leaves the
target untouched and re-raises. `file_sha256` is the content hash that checkpoints, the shipped
weights, embedding caches and the index record for the files they verify; a file that carries its
own checksum instead ends in a footer (`write_checksummed`, `read_checksummed`).
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20
# A checksummed file is its body, then this footer: the body's sha256, its length, a magic.
CHECKSUM_FOOTER = struct.Struct("<32sQ8s")


class ChecksumError(ValueError):
    """A checksummed file whose body does not match its footer."""


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksummed(path: Path, write_body: Callable[[BinaryIO], None], magic: bytes) -> None:
    """Write the body (`write_body` writes it to the open file), then its footer; `magic` (8 bytes)
    names the format."""
    with open(path, "w+b") as f:
        write_body(f)
        size = f.tell()
        f.seek(0)
        digest = hashlib.file_digest(f, "sha256").digest()
        f.seek(size)
        f.write(CHECKSUM_FOOTER.pack(digest, size, magic))


def read_checksummed(data: bytes, magic: bytes) -> tuple[bytes, bool]:
    """(body, True) for `data` ending in a `magic` footer that matches it; (data, False) for data
    with no such footer (e.g. written before the format had one). Raises `ChecksumError` when the
    footer is there but the body's length or sha256 differs."""
    digest, size, found = CHECKSUM_FOOTER.unpack(data[-CHECKSUM_FOOTER.size :].rjust(CHECKSUM_FOOTER.size, b"\0"))
    if found != magic:
        return data, False
    body = memoryview(data)[:size]
    if size != len(data) - CHECKSUM_FOOTER.size or hashlib.sha256(body).digest() != digest:
        raise ChecksumError("its checksum does not match")
    return bytes(body), True


def fsync_dir(path: Path) -> None:
    """Make a rename, a new file or a deletion in the folder `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(path: Path) -> Path:
    """The temp file `write_atomic` writes before renaming it to `path`."""
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def remove_temp_files(folder: Path) -> None:
    """Delete the temp files a killed writer left in `folder` (they can be large). Only for a
    caller that has the folder to itself: a live writer's temp file would go too."""
    for path in Path(folder).glob(".*.tmp"):
        path.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes | Callable[[Path], None], *, sync_dir: bool = True) -> None:
    """Replace `path` with `data`: bytes, or a function that writes the file it is given (for
    writers that take a path, e.g. safetensors' `save_file`).

    The temp file is named per process and thread, so concurrent writers of one name never
    share it. `sync_dir=False` leaves the folder fsync to a caller that writes many files.
    The file gets the permissions of any new file (0666 less the umask), also where the writer
    creates its own with others (safetensors writes 0600).
    """
    path = Path(path)
    tmp = _temp_name(path)
    try:
        if callable(data):
            with open(tmp, "wb") as created:  # the mode the umask gives a new file here
                mode = os.fstat(created.fileno()).st_mode
            data(tmp)
            os.chmod(tmp, mode)
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
        else:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a partial temp file must not keep holding a full disk
        raise
    if sync_dir:
        fsync_dir(path.parent)
