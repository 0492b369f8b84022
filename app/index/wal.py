"""The write-ahead log: checksummed records appended and fsynced before a write is acknowledged.

One record on disk:

    magic b"PCW1" | payload length (uint32 LE) | crc32 of payload (uint32 LE) | payload

The payload is UTF-8 JSON: `{"seq", "op": "put", "id", "metadata", "source", "vector"}` (the
vector as base64 of little-endian float32) or `{"seq", "op": "delete", "id"}`. Records are
replayed in order; reading stops at the first record that is short, has a bad magic or a bad
checksum — a torn tail left by `kill -9` in the middle of an append — and the file is cut back
to the last whole record so later appends never follow garbage.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"PCW1"
HEADER = struct.Struct("<4sII")  # magic, payload length, crc32
MAX_RECORD = 64 * 1024 * 1024


@dataclass(frozen=True)
class Record:
    seq: int
    op: str  # "put" | "delete"
    id: str
    metadata: dict[str, Any] | None = None
    source: str | None = None
    vector: np.ndarray | None = None  # (D,) float32

    def encode(self) -> bytes:
        body: dict[str, Any] = {"seq": self.seq, "op": self.op, "id": self.id}
        if self.op == "put":
            assert self.vector is not None
            body["metadata"] = self.metadata or {}
            body["source"] = self.source
            body["vector"] = base64.b64encode(np.asarray(self.vector, dtype="<f4").tobytes()).decode("ascii")
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload

    @classmethod
    def decode(cls, payload: bytes) -> Record:
        body = json.loads(payload)
        vector = None
        if body["op"] == "put":
            vector = np.frombuffer(base64.b64decode(body["vector"]), dtype="<f4").astype(np.float32)
        return cls(body["seq"], body["op"], body["id"], body.get("metadata"), body.get("source"), vector)


def read_records(path: Path, *, repair: bool = False) -> Iterator[Record]:
    """Every whole record of the log at `path`, in order; a torn tail is dropped (and, with
    `repair`, cut from the file)."""
    if not path.exists():
        return
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        header = data[offset : offset + HEADER.size]
        if len(header) < HEADER.size:
            break
        magic, length, crc = HEADER.unpack(header)
        payload = data[offset + HEADER.size : offset + HEADER.size + length]
        if magic != MAGIC or length > MAX_RECORD or len(payload) < length or zlib.crc32(payload) != crc:
            break
        try:
            record = Record.decode(payload)
        except (ValueError, KeyError, TypeError):
            break
        offset += HEADER.size + length
        yield record
    if offset < len(data) and repair:
        with open(path, "r+b") as f:
            f.truncate(offset)
            f.flush()
            os.fsync(f.fileno())


class WriteAheadLog:
    """Appends records to one log file; `append` returns once they are on stable storage."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "ab")  # noqa: SIM115 — lives as long as the store
        self._broken = False
        fsync_dir(path.parent)

    def append(self, records: list[Record]) -> None:
        """Write `records` in one go and fsync: they survive `kill -9` (and power loss) after this.

        A failed append (e.g. disk full) is cut back off, so no later record follows a partial
        one; if even that fails the log refuses further appends.
        """
        if self._broken:
            raise OSError(f"write-ahead log {self.path} is unusable after an earlier write error")
        data = b"".join(record.encode() for record in records)
        offset = self._file.tell()
        try:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        except BaseException:
            try:
                self._file.truncate(offset)
                self._file.seek(offset)
                os.fsync(self._file.fileno())
            except OSError:
                self._broken = True
            raise

    @property
    def size(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Write `data` to `path` so a reader sees the old file or the whole new one: temp file
    (named per thread, so concurrent writers of one name never share it), fsync, rename, and
    an fsync of the folder unless the caller does that once for many files."""
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)
