"""The write-ahead log: checksummed records appended and fsynced before a write is acknowledged.

One record on disk:

    magic b"PCW1" | payload length (uint32 LE) | crc32 of payload (uint32 LE) | payload

The payload is UTF-8 JSON: `{"seq", "op": "put", "id", "metadata", "source", "vector"}` (the
vector as base64 of little-endian float32) or `{"seq", "op": "delete", "id"}`. Records are
replayed in order. A bad record (short, bad magic, bad checksum) with nothing valid after it is
a torn tail — an append cut short by `kill -9` or power loss, never acknowledged — so it is
dropped and the file is cut back to the last whole record, so later appends never follow
garbage. A bad record *followed by* valid ones is damage to acknowledged writes: reading
refuses (`CorruptLog`) rather than silently dropping everything after it.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.files import fsync_dir

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


class CorruptLog(ValueError):
    """The log is damaged before its end: acknowledged writes after the damage would be lost."""


def _record_at(data: bytes, offset: int) -> tuple[Record, int] | None:
    """The whole, checksummed record starting at `offset` and the offset after it, or None."""
    header = data[offset : offset + HEADER.size]
    if len(header) < HEADER.size:
        return None
    magic, length, crc = HEADER.unpack(header)
    end = offset + HEADER.size + length
    payload = data[offset + HEADER.size : end]
    if magic != MAGIC or length > MAX_RECORD or len(payload) < length or zlib.crc32(payload) != crc:
        return None
    try:
        return Record.decode(payload), end
    except (ValueError, KeyError, TypeError):
        return None


def _next_record(data: bytes, start: int) -> int | None:
    """The offset of the first valid record at or after `start`, or None."""
    offset = data.find(MAGIC, start)
    while offset != -1:
        if _record_at(data, offset) is not None:
            return offset
        offset = data.find(MAGIC, offset + 1)
    return None


def read_records(path: Path, *, repair: bool = False) -> Iterator[Record]:
    """Every whole record of the log at `path`, in order; a torn tail is dropped (and, with
    `repair`, cut from the file). Raises `CorruptLog` after the last good record when a bad
    record has valid records after it (a caller applying records must then discard them all)."""
    if not path.exists():
        return
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        found = _record_at(data, offset)
        if found is None:
            break
        record, offset = found
        yield record
    if offset < len(data):
        following = _next_record(data, offset + 1)
        if following is not None:
            raise CorruptLog(
                f"write-ahead log {path} is corrupt at byte {offset} of {len(data)} and valid records follow "
                f"from byte {following}: reading on would lose acknowledged writes. Restore the index folder "
                f"from a backup, or drop the records after the damage: `truncate -s {offset} {path}`"
            )
    if offset < len(data) and repair:
        with open(path, "r+b") as f:
            f.truncate(offset)
            f.flush()
            os.fsync(f.fileno())


class WriteAheadLog:
    """Appends records to one log file; `append` returns once they are on stable storage."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Unbuffered: a failed write leaves nothing in a Python buffer to be flushed later.
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 — lives as long as the store
        self._broken = False
        fsync_dir(path.parent)

    def append(self, records: list[Record]) -> None:
        """Write `records` in one go and fsync: they survive `kill -9` (and power loss) after this.

        A failed append (e.g. disk full) is cut back off, so no later record follows a partial
        one, and the log takes appends again once there is room; if even the cut fails the log
        refuses further appends.
        """
        if self._broken:
            raise OSError(f"write-ahead log {self.path} is unusable after an earlier write error; restart")
        data = memoryview(b"".join(record.encode() for record in records))
        fd = self._file.fileno()
        offset = os.fstat(fd).st_size
        try:
            while data:
                data = data[self._file.write(data) :]
            os.fsync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, offset)
                os.fsync(fd)
            except OSError:
                self._broken = True
            raise

    @property
    def size(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def close(self) -> None:
        self._file.close()
