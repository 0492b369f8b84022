"""Content hashes that identify a model: sha256 over its base spec and its weights' hashes."""

from __future__ import annotations

import hashlib


def combine(*parts: str) -> str:
    """One sha256 over ordered parts (spec strings and file hashes)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()
