"""Image embeddings on disk, keyed by model fingerprint and image content hash.

PC-CLIP freezes the image tower, so every image is embedded exactly once per model and
training afterwards runs the text tower only. One folder per fingerprint holds
`embeddings.safetensors` (N, D) and `hashes.json` (the sha256 of each row's image file).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from models.encoder import Encoder
from models.fingerprint import file_sha256
from training.sources.base import open_rgb

EMBEDDINGS_FILE = "embeddings.safetensors"
HASHES_FILE = "hashes.json"


class EmbeddingCache:
    def __init__(self, root: Path, encoder: Encoder, batch_size: int = 64):
        self.encoder = encoder
        self.batch_size = batch_size
        self.folder = Path(root) / encoder.fingerprint
        self._rows: dict[str, int] = {}
        self._embeddings = torch.empty(0, encoder.embed_dim)
        if (self.folder / HASHES_FILE).is_file():
            hashes = json.loads((self.folder / HASHES_FILE).read_text())
            self._embeddings = load_file(str(self.folder / EMBEDDINGS_FILE))["embeddings"]
            if len(hashes) > len(self._embeddings):
                raise ValueError(f"{self.folder}: {len(hashes)} hashes but {len(self._embeddings)} embeddings")
            self._embeddings = self._embeddings[: len(hashes)]  # rows past the hash list: an interrupted save
            self._rows = {digest: row for row, digest in enumerate(hashes)}

    def __len__(self) -> int:
        return len(self._rows)

    def embed(self, paths: Sequence[Path]) -> torch.Tensor:
        """Embeddings of the image files, computing only those not cached yet.  -> (N, D)"""
        digests = [file_sha256(Path(path)) for path in paths]
        missing = {digest: path for digest, path in zip(digests, paths, strict=True) if digest not in self._rows}
        if missing:
            self._add(list(missing), list(missing.values()))
        return self._embeddings[[self._rows[digest] for digest in digests]]

    def _add(self, digests: list[str], paths: list[Path]) -> None:
        parts = []
        progress = tqdm(total=len(paths), desc="embedding images", unit="img")
        for start in range(0, len(paths), self.batch_size):
            chunk = paths[start:start + self.batch_size]
            parts.append(self.encoder.encode_images([open_rgb(Path(path)) for path in chunk]))
            progress.update(len(chunk))
        progress.close()
        for digest in digests:
            self._rows[digest] = len(self._rows)
        self._embeddings = torch.cat([self._embeddings, *parts])
        self._save()

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        hashes = sorted(self._rows, key=self._rows.get)
        embeddings_tmp = self.folder / f".{EMBEDDINGS_FILE}.tmp"
        hashes_tmp = self.folder / f".{HASHES_FILE}.tmp"
        save_file({"embeddings": self._embeddings.contiguous()}, str(embeddings_tmp))
        hashes_tmp.write_text(json.dumps(hashes))
        # rows only grow and the hash list is renamed last: a reader never sees a hash without its row
        os.replace(embeddings_tmp, self.folder / EMBEDDINGS_FILE)
        os.replace(hashes_tmp, self.folder / HASHES_FILE)
