"""Serving throughput: does the micro-batcher get the server close to a batched forward pass?

Measured within one run (machines are noisy; only ratios mean much):
  1. raw      — `encode_images` of the same model in this process, batches of `--raw-batch`;
                also one image per call (the floor a server without batching can reach);
  2. server   — uvicorn on loopback (a subprocess), `/embed` with ONE image per request, at
                concurrency 1, 4 and 16, driven by wrk (Debian's `wrk`, one thread, a Lua script
                cycling the bodies: a load generator that leaves the cores to the server) or,
                with `--client httpx` or without wrk, by an httpx client in this process;
  3. baseline — the same server with max_batch=1 (one request, one forward), at concurrency 16.
Prints one JSON line. Each level is bounded by `--seconds` and `--requests`.

    python bench/serve.py --model tiny --seconds 5
    python bench/serve.py                      # openclip:ViT-B-32/random, the realistic cost
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, installed or not
from bench import wrk  # noqa: E402
from quality.server import loopback_server  # noqa: E402

CONCURRENCY = (1, 4, 16)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="openclip:ViT-B-32/random", help="model spec (also: tiny)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--seconds", type=float, default=8.0, help="time per measured level")
    parser.add_argument("--requests", type=int, default=400, help="most requests per server level")
    parser.add_argument("--raw-batch", type=int, default=16, help="batch size of the raw measurement")
    parser.add_argument("--max-batch", type=int, default=64, help="server PCCLIP_MAX_BATCH")
    parser.add_argument("--max-wait-ms", type=float, default=2.0, help="server PCCLIP_MAX_WAIT_MS")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--image-size", type=int, default=224, help="side of the test JPEGs")
    parser.add_argument("--ready-timeout", type=float, default=600.0, help="longest wait for /ready")
    wrk.client_option(parser)
    return parser.parse_args()


# --- inputs --------------------------------------------------------------------------------


def make_images(count: int, side: int, seed: int = 0) -> list[Image.Image]:
    """Smooth random colour fields: realistic JPEG sizes, no two alike."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        images.append(Image.fromarray(coarse).resize((side, side), Image.Resampling.BILINEAR))
    return images


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# --- 1. raw encoder ------------------------------------------------------------------------


def measure_raw(model: str, device: str, images: list[Image.Image], batch: int, seconds: float, threads: int) -> dict:
    import torch

    from models import create_model

    if threads:
        torch.set_num_threads(threads)

    encoder = create_model(model, device=device)
    decoded = [Image.open(io.BytesIO(jpeg(im))).convert("RGB") for im in images]  # as the server sees them

    def rate(batch_size: int) -> float:
        encoder.encode_images(decoded[:batch_size], batch_size=batch_size)  # warm-up
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 2 or done < 2 * batch_size:
            offset = done % len(decoded)
            chunk = (decoded * 2)[offset : offset + batch_size]
            encoder.encode_images(chunk, batch_size=batch_size)
            done += batch_size
        return done / (time.perf_counter() - start)

    return {
        "raw_batched_ips": rate(batch),
        "raw_single_ips": rate(1),
        "device": str(encoder.device),
        "threads": torch.get_num_threads(),
    }


# --- 2./3. server --------------------------------------------------------------------------


@contextmanager
def server(args: argparse.Namespace, max_batch: int):
    settings = {
        "PCCLIP_MODEL": args.model,
        "PCCLIP_DEVICE": args.device,
        "PCCLIP_MAX_BATCH": str(max_batch),
        "PCCLIP_MAX_WAIT_MS": str(args.max_wait_ms),
        "PCCLIP_QUEUE_LIMIT": "100000",
        **({"PCCLIP_TORCH_THREADS": str(args.threads)} if args.threads else {}),
    }
    with (
        tempfile.TemporaryDirectory(prefix="serve-index-") as index_dir,  # not the checkout's data/index
        loopback_server({**settings, "PCCLIP_INDEX_DIR": index_dir}, ready_timeout=args.ready_timeout) as running,
    ):
        yield running.url


async def drive(url: str, bodies: list[bytes], concurrency: int, seconds: float, limit: int) -> dict:
    """`concurrency` clients each post one-image /embed requests back to back."""
    latencies: list[float] = []
    sent = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        headers = {"content-type": "application/json"}
        await client.post("/embed", content=bodies[0], headers=headers)  # warm-up
        before = batch_totals((await client.get("/metrics")).text)
        start = time.perf_counter()

        async def worker() -> None:
            nonlocal sent
            while sent < limit and time.perf_counter() - start < seconds:
                body = bodies[sent % len(bodies)]
                sent += 1
                t0 = time.perf_counter()
                response = await client.post("/embed", content=body, headers=headers)
                response.raise_for_status()
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        after = batch_totals((await client.get("/metrics")).text)
    batches = after[1] - before[1]
    return {
        "ips": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * sorted(latencies)[int(0.99 * (len(latencies) - 1))],
        "requests": len(latencies),
        "mean_batch": (after[0] - before[0]) / batches if batches else 0.0,
    }


def drive_wrk(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    """wrk with `concurrency` connections posting the bodies in turn (a warm-up run first)."""
    texts = [body.decode() for body in bodies]
    wrk.run(url, "/embed", texts, concurrency, 1.0)
    before = batch_totals(httpx.get(f"{url}/metrics").text)
    figures = wrk.run(url, "/embed", texts, concurrency, seconds)
    after = batch_totals(httpx.get(f"{url}/metrics").text)
    if figures["failed"]:
        raise RuntimeError(f"wrk saw {figures['failed']} failed requests")
    batches = after[1] - before[1]
    return {**figures, "ips": figures["rps"], "mean_batch": (after[0] - before[0]) / batches if batches else 0.0}


def batch_totals(metrics: str) -> tuple[float, float]:
    """(images encoded, forward passes) so far, from the server's Prometheus text."""
    values = {}
    for line in metrics.splitlines():
        for name in ("pcclip_batch_size_sum", "pcclip_batch_size_count"):
            if line.startswith(f'{name}{{kind="pixels"}}'):
                values[name] = float(line.split()[-1])
    return values.get("pcclip_batch_size_sum", 0.0), values.get("pcclip_batch_size_count", 0.0)


def load(args: argparse.Namespace, url: str, bodies: list[bytes], concurrency: int) -> dict:
    if args.client == "wrk":
        return drive_wrk(url, bodies, concurrency, args.seconds)
    return asyncio.run(drive(url, bodies, concurrency, args.seconds, args.requests))


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    images = make_images(32, args.image_size)
    bodies = [json.dumps({"images": [{"b64": base64.b64encode(jpeg(im)).decode()}]}).encode() for im in images]

    started = time.perf_counter()
    raw = measure_raw(args.model, args.device, images, args.raw_batch, args.seconds, args.threads)
    levels = {}
    with server(args, args.max_batch) as url:
        for concurrency in CONCURRENCY:
            levels[concurrency] = load(args, url, bodies, concurrency)
    with server(args, 1) as url:
        unbatched = load(args, url, bodies, CONCURRENCY[-1])

    top = levels[CONCURRENCY[-1]]
    print(
        json.dumps(
            {
                "bench": "serve",
                "model": args.model,
                "device": raw["device"],
                "cpus": os.cpu_count(),
                "torch_threads": raw["threads"],
                "raw_batch": args.raw_batch,
                "raw_batched_ips": round(raw["raw_batched_ips"], 2),
                "raw_single_ips": round(raw["raw_single_ips"], 2),
                **{f"server_c{c}_ips": round(levels[c]["ips"], 2) for c in CONCURRENCY},
                **{f"server_c{c}_p50_ms": round(levels[c]["p50_ms"], 1) for c in CONCURRENCY},
                "server_c16_p99_ms": round(top["p99_ms"], 1),
                "client": args.client,
                "server_c16_mean_batch": round(top["mean_batch"], 2),
                "unbatched_c16_ips": round(unbatched["ips"], 2),
                "ratio_c16_vs_raw_batched": round(top["ips"] / raw["raw_batched_ips"], 3),
                "ratio_c16_vs_unbatched": round(top["ips"] / unbatched["ips"], 3),
                "ratio_c16_vs_c1": round(top["ips"] / levels[1]["ips"], 3),
                "max_batch": args.max_batch,
                "max_wait_ms": args.max_wait_ms,
                "wall_s": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
