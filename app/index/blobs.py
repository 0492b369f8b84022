"""Content-addressed source images: the bytes an item was embedded from, as `sources/<sha256>`.

An item's `source` reference is `blob:<sha256>` (bytes stored here; the same bytes always land
under the same name, so writers need no lock and an id can never choose a file name) or
`path:<absolute path>` (a CLI build's image, read where it lies).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from common.files import fsync_dir, remove_temp_files, write_atomic

DIGEST = re.compile(r"[0-9a-f]{64}")


class SourceFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(exist_ok=True)

    def store(self, sources: Sequence[bytes | Path | None]) -> list[str | None]:
        """Write new source images (each fsynced, then one folder fsync); their references."""
        refs: list[str | None] = []
        written = False
        for source in sources:
            if source is None:
                refs.append(None)
            elif isinstance(source, Path):
                refs.append(f"path:{source.resolve()}")
            else:
                digest = hashlib.sha256(source).hexdigest()
                path = self.folder / digest
                if not path.exists():
                    write_atomic(path, source, sync_dir=False)
                    written = True
                refs.append(f"blob:{digest}")
        if written:
            fsync_dir(self.folder)
        return refs

    def read(self, source: str) -> bytes:
        """The bytes of a reference (`OSError` when they cannot be read, or it is not one)."""
        kind, _, ref = source.partition(":")
        if kind == "blob" and DIGEST.fullmatch(ref):
            return (self.folder / ref).read_bytes()
        if kind == "path" and Path(ref).is_absolute():
            return Path(ref).read_bytes()
        raise FileNotFoundError(f"not a source reference: {source[:80]!r}")

    def remove_temp_files(self) -> None:
        """The temp files a killed writer left (only while the folder's store is held alone)."""
        remove_temp_files(self.folder)
