"""`pcclip index build`: the local engine against the Ray engine on the same drawn images, side
by side in one run (the machines are noisy: read the ratio, not the seconds).

Both build a fresh index from one folder with one already-loaded driver model; the Ray figure
includes the actors' model loads (each build pays them) but not the cluster start, which is
reported apart. Prints one JSON line.

    python bench/index_build.py --images 1000
    python bench/index_build.py --images 1000 --actors 2 --num-cpus 0.5 --ray-cpus 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, installed or not
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-base", help="model spec")
    parser.add_argument("--images", type=int, default=1000, help="images to draw and index")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--actors", type=int, default=2, help="Ray model actors")
    parser.add_argument("--num-cpus", type=float, default=0.5, help="CPUs per Ray actor and decode task")
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray cluster")
    return parser.parse_args()


def draw_images(folder: Path, count: int) -> None:
    """`count` 64-px PNGs: a shape of random colour, size and place on a random background."""
    rng = random.Random(0)
    for i in range(count):
        image = Image.new("RGB", (64, 64), tuple(rng.randrange(256) for _ in range(3)))
        x, y, size = rng.randrange(40), rng.randrange(40), 8 + rng.randrange(24)
        shape = ImageDraw.Draw(image).ellipse if i % 2 else ImageDraw.Draw(image).rectangle
        shape((x, y, x + size, y + size), fill=tuple(rng.randrange(256) for _ in range(3)))
        image.save(folder / f"{i:06d}.png")


def main() -> None:
    args = parse_args()
    import ray

    from app.index import IndexStore
    from app.index.build import build_index
    from app.index.ray_build import RayOptions, build_index_ray
    from app.index.sources import read_source
    from models import create_model

    encoder = create_model(args.model, device="cpu")
    with tempfile.TemporaryDirectory(prefix="pcclip-bench-index-") as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        draw_images(folder, args.images)
        rows = read_source(folder)

        def timed(name: str, build) -> float:
            directory = Path(tmp) / name
            with IndexStore.open(directory, fingerprint=encoder.fingerprint, embed_dim=encoder.embed_dim) as store:
                started = time.perf_counter()
                summary = build(store)
                elapsed = time.perf_counter() - started
            assert summary.added == args.images, summary.line()
            return elapsed

        batch = args.batch_size
        local_s = timed("local", lambda store: build_index(store, encoder, rows, batch_size=batch, progress=False))
        started = time.perf_counter()
        ray.init(num_cpus=args.ray_cpus, include_dashboard=False, logging_level="warning", log_to_driver=False)
        ray_start_s = time.perf_counter() - started
        options = RayOptions(num_cpus=args.num_cpus, actors=args.actors, batch_size=args.batch_size)
        ray_s = timed("ray", lambda store: build_index_ray(store, encoder, rows, options, progress=False))
        ray.shutdown()
    figures = {
        "bench": "index_build",
        "model": args.model,
        "images": args.images,
        "cpus": os.cpu_count(),
        "ray_cpus": args.ray_cpus,
        "actors": args.actors,
        "actor_cpus": args.num_cpus,
        "batch_size": args.batch_size,
        "local_s": round(local_s, 2),
        "ray_s": round(ray_s, 2),
        "ray_cluster_start_s": round(ray_start_s, 2),
        "ray_over_local": round(ray_s / local_s, 2),
        "local_images_per_s": round(args.images / local_s, 1),
        "ray_images_per_s": round(args.images / ray_s, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
