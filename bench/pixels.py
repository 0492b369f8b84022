"""Memory under decoded pixels: concurrent `/embed` requests of huge, tiny-to-send images.

The issue-14 attack: 8 concurrent requests, each of 4 × 8192×2048 1-bit PNGs (~5 KB apiece,
~67 million pixels to decode per request). Against a real server on loopback (a subprocess),
prints one JSON line: the server's RSS before, its peak (VmHWM) and RSS after each round and
after `--settle` idle seconds, and the status codes each round got.

    python bench/pixels.py
    python bench/pixels.py --env PCCLIP_MAX_PIXELS_IN_FLIGHT=1000000000 --env MALLOC_ARENA_MAX=2
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, installed or not
from quality.server import Server, loopback_server  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="model spec")
    parser.add_argument("--concurrency", type=int, default=8, help="requests sent at once")
    parser.add_argument("--images", type=int, default=4, help="images per request")
    parser.add_argument("--width", type=int, default=8192)
    parser.add_argument("--height", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3, help="attacks, one after another")
    parser.add_argument("--settle", type=float, default=10.0, help="idle seconds before the last RSS reading")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="server environment")
    return parser.parse_args()


def sparse_png(width: int, height: int, seed: int) -> bytes:
    """A 1-bit PNG, white but for one black square: ~5 KB to send, width × height pixels to decode."""
    image = Image.new("1", (width, height), 1)
    left = 64 + 256 * seed
    ImageDraw.Draw(image).rectangle((left, 64, left + 128, 192), fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def memory_mb(server: Server) -> dict[str, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{server.pid}/status").read_text().splitlines() if ":" in line
    )
    return {name: int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM")}


async def attack(url: str, bodies: list[dict]) -> Counter:
    async with httpx.AsyncClient(timeout=600) as client:
        responses = await asyncio.gather(*(client.post(f"{url}/embed", json=body) for body in bodies))
    return Counter(str(response.status_code) for response in responses)


def main() -> None:
    args = parse_args()
    images = [sparse_png(args.width, args.height, seed) for seed in range(args.images)]
    body = {"images": [{"b64": base64.b64encode(data).decode()} for data in images]}
    settings = {"PCCLIP_MODEL": args.model, "PCCLIP_DEVICE": "cpu", **dict(item.split("=", 1) for item in args.env)}
    report: dict = {"settings": settings, "body_kb": round(len(json.dumps(body)) * args.concurrency / 1024)}
    with (
        tempfile.TemporaryDirectory(prefix="pcclip-pixels-") as index_dir,
        loopback_server({"PCCLIP_INDEX_DIR": index_dir, **settings}) as server,
    ):
        httpx.post(f"{server.url}/embed", json={"texts": ["warm up"]}, timeout=60).raise_for_status()
        report["before_mb"] = memory_mb(server)["VmRSS"]
        report["rounds"] = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            statuses = asyncio.run(attack(server.url, [body] * args.concurrency))
            seconds = round(time.perf_counter() - start, 1)
            report["rounds"].append({"statuses": dict(statuses), "seconds": seconds, **memory_mb(server)})
        time.sleep(args.settle)
        report["settled_mb"] = memory_mb(server)["VmRSS"]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
