"""`pcclip index build --engine ray`: the same build as `build_index`, spread over a Ray cluster.

The driver (this process) reads the source and skips the ids already indexed; Ray Data then
decodes and preprocesses the images (a stateless step) and embeds them in a pool of model
actors (each loads the model once, on a GPU when `num_gpus` > 0). Ray runs the decoding in the
actors' processes when both steps ask for the same resources (CPU actors), and in CPU tasks of
their own beside GPU actors. The driver writes each embedded batch to the index with `put` as it
arrives, so a build killed halfway resumes after its last written batch. Unreadable images are
counted and logged, as by the local build.

Actors and tasks ask for fractional CPUs by default: on a small machine, actors holding whole
CPUs leave none for the decoding tasks that feed them, and the pipeline stalls.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from app.index.backend import IndexBackend, NewItem
from app.index.build import BuildSummary, load_images, todo_rows
from app.index.sources import SourceRow
from models import Encoder, create_model


def require_ray(module: str = "ray.data") -> ModuleType:
    """`module` imported, or an ImportError that names the extra to install."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"--engine ray needs Ray Data ({exc}): pip install 'pcclip[ray]'") from None
    import ray

    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where the build runs and what each model actor and decode task asks Ray for."""

    address: str | None = None  # an existing cluster ("auto", "ray://host:10001", "host:6379"); None = start one
    num_cpus: float = 0.5  # per model actor and per decode task (fractional: see the module docstring)
    num_gpus: float = 0.0  # per model actor; > 0 puts the model on a GPU
    actors: int = 2  # model actors embedding at once
    batch_size: int = 32  # images per decode task and per forward pass


def build_index_ray(
    store: IndexBackend,
    encoder: Encoder,
    rows: list[SourceRow],
    options: RayOptions = RayOptions(),
    *,
    progress: bool = True,
) -> BuildSummary:
    """Embed `rows` into `store` on Ray (see the module docstring). `encoder` is the driver's
    copy of the model: its spec is what the actors load, its preprocessing what the tasks run."""
    ray = require_ray()
    # 1. The rows still to do (resumed builds skip what is indexed), before anything is embedded
    summary = BuildSummary()
    todo = todo_rows(store, rows, summary)
    # 2. Embed them on Ray (a cluster is started only for work), writing each batch as it comes
    if todo:
        started = not ray.is_initialized()
        if started:
            ray.init(address=options.address, include_dashboard=False, logging_level=logging.WARNING)
        try:
            _embed_into(store, _pipeline(ray, encoder, todo, options), todo, summary, progress)
        finally:
            if started:
                ray.shutdown()
    summary.size = store.describe()["size"]
    return summary


def _embed_into(
    store: IndexBackend, dataset: Any, todo: list[SourceRow], summary: BuildSummary, progress: bool
) -> None:
    """Stream the embedded batches of `dataset` back and put each one into the index."""
    by_id = {row.id: row for row in todo}
    with tqdm(total=len(todo), desc="index build (ray)", unit="image", disable=not progress) as bar:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            _write(store, batch, by_id, summary)
            bar.update(len(batch["id"]))


def _pipeline(ray: ModuleType, encoder: Encoder, todo: list[SourceRow], options: RayOptions) -> Any:
    """listing → decode + preprocess (tasks) → embed (actor pool) as a lazy Ray dataset."""
    ray.data.DataContext.get_current().enable_progress_bars = False  # ours is the tqdm bar
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no execution plans between the bar's lines
    listing = ray.data.from_items(
        [{"id": row.id, "path": str(row.path)} for row in todo],
        override_num_blocks=math.ceil(len(todo) / options.batch_size),  # a decode task per batch
    )
    decoded = listing.map_batches(
        decode_batch,
        batch_size=options.batch_size,
        batch_format="numpy",
        fn_kwargs={"preprocess": encoder.preprocess, "side": encoder.input_side},
        num_cpus=options.num_cpus,
    )
    return decoded.map_batches(
        Embedder,
        batch_size=options.batch_size,
        batch_format="numpy",
        fn_constructor_kwargs={"spec": encoder.spec, "device": "cuda" if options.num_gpus > 0 else "cpu"},
        compute=ray.data.ActorPoolStrategy(size=options.actors),
        num_cpus=options.num_cpus,
        num_gpus=options.num_gpus,
    )


def decode_batch(batch: dict[str, np.ndarray], preprocess: Any, side: int | None = None) -> dict[str, np.ndarray]:
    """Open, decode (towards the model's input `side`, as the server does) and preprocess a batch
    of image files; a file that does not open gets `ok` False (logged by the local build's
    loader) and zero pixels, so one bad file never fails the batch."""
    entries = zip(batch["id"], batch["path"], strict=True)
    loaded = {item_id: image for item_id, image, _ in load_images(entries, Image.open, BuildSummary(), side)}
    blank = torch.zeros_like(preprocess(Image.new("RGB", (8, 8))))  # (3, H, W)
    pixels = [preprocess(loaded[item_id]) if item_id in loaded else blank for item_id in batch["id"]]
    return {
        "id": batch["id"],
        "ok": np.array([item_id in loaded for item_id in batch["id"]]),
        "pixels": torch.stack(pixels).numpy(),  # (B, 3, H, W) float32
    }


class Embedder:
    """A model actor: loads the model once, then embeds the decodable rows of each batch."""

    def __init__(self, spec: str, device: str) -> None:
        self.encoder = create_model(spec, device=device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = batch["ok"].astype(bool)
        vectors = np.zeros((len(ok), self.encoder.embed_dim), dtype=np.float32)  # (B, D)
        if ok.any():
            vectors[ok] = self.encoder.encode_pixels(torch.from_numpy(batch["pixels"][ok])).numpy()
        return {"id": batch["id"], "ok": ok, "vector": vectors}


def _write(
    store: IndexBackend, batch: dict[str, np.ndarray], by_id: dict[str, SourceRow], summary: BuildSummary
) -> None:
    """Put a batch's embedded rows into the index; count the ones that did not decode."""
    items = []
    for item_id, ok, vector in zip(batch["id"], batch["ok"], batch["vector"], strict=True):
        row = by_id[str(item_id)]
        if ok:
            items.append(NewItem(row.id, vector, row.metadata, row.path))
        else:
            summary.failed.append(row.id)
    if items:
        store.put(items)
        summary.added += len(items)
