"""Image embeddings on disk, keyed by model fingerprint and image content hash.

PC-CLIP freezes the image tower, so every image is embedded exactly once per model and
training afterwards runs the text tower only. One folder per fingerprint (or per `key` the
caller names, e.g. the image tower's identity) holds `embeddings.safetensors` (N, D) and
`hashes.json` (the content hash of each row's image: the sha256 of its file, or any key the
caller computes for images that are not files, such as CIFAR's arrays).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from common.files import file_sha256
from models.encoder import Encoder
from training.sources.base import open_rgb

EMBEDDINGS_FILE = "embeddings.safetensors"
HASHES_FILE = "hashes.json"


class EmbeddingCache:
    def __init__(self, root: Path, encoder: Encoder, batch_size: int = 64, key: str | None = None):
        self.encoder = encoder
        self.batch_size = batch_size
        self.folder = Path(root) / (key or encoder.fingerprint)
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
        return self.embed_keyed(digests, lambda positions: [open_rgb(Path(paths[i])) for i in positions])

    def embed_keyed(self, keys: Sequence[str], open_images: Callable[[list[int]], list[Image.Image]]) -> torch.Tensor:
        """Embeddings of the images whose content keys are `keys`; `open_images(positions)`
        returns the images at those positions of `keys`, asked only for the uncached ones.  -> (N, D)"""
        missing: dict[str, int] = {}
        for position, key in enumerate(keys):
            if key not in self._rows:
                missing.setdefault(key, position)
        if missing:
            self._add(list(missing), list(missing.values()), open_images)
        return self._embeddings[[self._rows[key] for key in keys]]

    def _add(self, digests: list[str], positions: list[int], open_images) -> None:
        parts = []
        progress = tqdm(total=len(positions), desc="embedding images", unit="img")
        for start in range(0, len(positions), self.batch_size):
            chunk = positions[start:start + self.batch_size]
            parts.append(self.encoder.encode_images(open_images(chunk), batch_size=self.batch_size))
            progress.update(len(chunk))
        progress.close()
        for digest in digests:
            self._rows[digest] = len(self._rows)
        self._embeddings = torch.cat([self._embeddings, *parts])
        self._save()

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        hashes = sorted(self._rows, key=self._rows.__getitem__)
        embeddings_tmp = self.folder / f".{EMBEDDINGS_FILE}.tmp"
        hashes_tmp = self.folder / f".{HASHES_FILE}.tmp"
        save_file({"embeddings": self._embeddings.contiguous()}, str(embeddings_tmp))
        hashes_tmp.write_text(json.dumps(hashes))
        # rows only grow and the hash list is renamed last: a reader never sees a hash without its row
        os.replace(embeddings_tmp, self.folder / EMBEDDINGS_FILE)
        os.replace(hashes_tmp, self.folder / HASHES_FILE)
