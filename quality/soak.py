"""Load, soak and overload the running service on loopback (`make soak`).

1. soak     — `--clients` concurrent clients (default 32) send a seeded mix of every kind of
              request (embed, upload, classify, difference, rank, index add/get/delete, search,
              generate + poll, info, health, metrics) for `--duration` seconds (default 300).
              Gate: zero errors (any status other than the one the request must get, or a
              transport error). Reported: p50/p99 latency per endpoint, and the server's RSS
              after warm-up, at the end, and its growth.
2. overload — `--overload-clients` clients (default 64) send batches of `--overload-batch`
              images each, far past PCCLIP_QUEUE_LIMIT, and a burst of /generate jobs past
              PCCLIP_GENERATION_QUEUE_LIMIT, for `--overload-duration` seconds.
              Gate: every answer is a success or a 429/503 carrying Retry-After; refusals come
              fast (p99 under `--max-refusal-p99-ms`, an /embed refusal's p50 below that of embeds
              done);
              no request hangs (per-request timeout) and none is a 5xx without Retry-After.
3. after    — the server is alive, `/ready` is 200 and a normal request succeeds.

Every loop is bounded in time and count and sends traffic to 127.0.0.1 only. Prints a JSON
report; exits 1 when a gate fails.

    python -m quality.soak                           # 32 clients, 5 minutes
    python -m quality.soak --duration 10 --clients 8 --overload-duration 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from quality.server import ROOT, Server, loopback_server

# Requests of the soak's mix, with their weights (see SoakClient; `--without` drops some).
MIX = {
    "embed": 20, "upload": 5, "classify": 15, "difference": 10, "rank": 8, "add": 10, "get": 6, "delete": 4,
    "search": 15, "generate": 2, "info": 2, "health": 2, "metrics": 1,
}  # fmt: skip
WORDS = ("red", "blue", "green", "yellow", "circle", "square", "triangle", "small", "large", "bright", "dark")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="model spec the server loads")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients of the soak")
    parser.add_argument("--duration", type=float, default=300.0, help="soak seconds")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the RSS baseline (default 10%%)")
    parser.add_argument("--overload-clients", type=int, default=64)
    parser.add_argument("--overload-batch", type=int, default=64, help="images per overload request")
    parser.add_argument("--overload-duration", type=float, default=20.0)
    parser.add_argument("--queue-limit", type=int, default=256, help="the server's PCCLIP_QUEUE_LIMIT")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request limit: longer counts as a hang")
    parser.add_argument(
        "--max-refusal-p99-ms", type=float, default=5000.0, help="gate on how fast 429/503 come (2 cores, shared)"
    )
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="bound on requests of each phase")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--without", type=lambda text: set(text.split(",")), default=set(),
        help=f"leave these requests out of the soak's mix, e.g. generate,add (of: {', '.join(MIX)})",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if unknown := args.without - MIX.keys():
        parser.error(f"--without: unknown {', '.join(sorted(unknown))}; choose from {', '.join(MIX)}")
    return args


# --- inputs --------------------------------------------------------------------------------


def png_b64(rng: random.Random, side: int = 32) -> str:
    image = Image.new("RGB", (side, side), tuple(rng.randrange(256) for _ in range(3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@dataclass
class Inputs:
    images: list[str]  # base64 PNGs

    @classmethod
    def make(cls, seed: int, count: int = 64) -> Inputs:
        rng = random.Random(seed)
        return cls([png_b64(rng) for _ in range(count)])

    def image(self, rng: random.Random) -> dict:
        return {"b64": rng.choice(self.images)}

    @staticmethod
    def text(rng: random.Random) -> str:
        return " ".join(rng.sample(WORDS, 2))


# --- measurements --------------------------------------------------------------------------


@dataclass
class Tally:
    """Latencies and outcomes per endpoint; `errors` lists what no request should get."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    errors: list[str] = field(default_factory=list)
    requests: int = 0

    def add(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests += 1
        self.latencies[endpoint].append(seconds)
        self.statuses[endpoint][status] += 1

    def error(self, message: str) -> None:
        if len(self.errors) < 50:  # enough to debug; the count is in `requests` vs statuses
            self.errors.append(message)

    def report(self) -> dict[str, dict]:
        return {
            endpoint: {
                "requests": len(values),
                "p50_ms": round(1000 * statistics.median(values), 1),
                "p99_ms": round(1000 * percentile(values, 0.99), 1),
                "statuses": dict(sorted(self.statuses[endpoint].items())),
            }
            for endpoint, values in sorted(self.latencies.items())
        }


def median_ms(values: list[float]) -> float | None:
    return round(1000 * statistics.median(values), 1) if values else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the soak's clients --------------------------------------------------------------------


class SoakClient:
    """One client: a seeded mix of requests; it reads and deletes only the items it added."""

    def __init__(
        self, number: int, http: httpx.AsyncClient, inputs: Inputs, tally: Tally, seed: int, mix: dict[str, int]
    ) -> None:
        self.name = f"c{number}"
        self.http = http
        self.inputs = inputs
        self.tally = tally
        self.rng = random.Random(seed * 1000 + number)
        self.items: list[str] = []
        self.added = 0
        self.mix: list[tuple[Callable[[], Awaitable[None]], int]] = [(getattr(self, n), w) for n, w in mix.items()]

    async def run(self, deadline: float, budget: list[int]) -> None:
        actions, weights = zip(*self.mix, strict=True)
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            await self.rng.choices(actions, weights)[0]()

    async def call(self, endpoint: str, method: str, path: str, expect: int = 200, **kwargs) -> dict | None:
        started = time.perf_counter()
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            self.tally.add(endpoint, 0, time.perf_counter() - started)
            self.tally.error(f"{endpoint}: {type(exc).__name__}: {exc}")
            return None
        self.tally.add(endpoint, response.status_code, time.perf_counter() - started)
        if response.status_code != expect:
            self.tally.error(f"{endpoint}: {response.status_code} {response.text[:300]}")
            return None
        return response.json() if response.headers.get("content-type", "").startswith("application/json") else {}

    async def embed(self) -> None:
        rng = self.rng
        body = {"texts": [self.inputs.text(rng)], "images": [self.inputs.image(rng) for _ in range(rng.randint(1, 4))]}
        await self.call("POST /embed", "POST", "/embed", json=body)

    async def upload(self) -> None:
        image = base64.b64decode(self.inputs.image(self.rng)["b64"])
        await self.call(
            "POST /embed/upload", "POST", "/embed/upload", files=[("images", ("x.png", image, "image/png"))]
        )

    async def classify(self) -> None:
        labels = self.rng.sample(WORDS, 4)
        body = {"images": [self.inputs.image(self.rng)], "labels": labels, "top_k": 2}
        if self.rng.random() < 0.5:
            body["comparatives"] = [{"first": labels[0], "second": labels[1], "text": f"more {labels[0]}"}]
        await self.call("POST /classify", "POST", "/classify", json=body)

    async def difference(self) -> None:
        first, second = self.rng.sample(self.inputs.images, 2)  # identical images would get null scores
        pair = {"first": {"b64": first}, "second": {"b64": second}}
        texts = [f"the first is more {word} than the second" for word in self.rng.sample(WORDS, 3)]
        await self.call(
            "POST /classify/difference", "POST", "/classify/difference", json={"pairs": [pair], "texts": texts}
        )

    async def rank(self) -> None:
        body = {
            "images": [self.inputs.image(self.rng) for _ in range(3)],
            "text": "the first is redder than the second",
        }
        if self.items:
            body["ids"] = [self.rng.choice(self.items)]
        await self.call("POST /rank", "POST", "/rank", json=body)

    async def add(self) -> None:
        if len(self.items) >= 20:  # keeps the index (and memory) bounded over a long soak
            await self.delete()
            return
        self.added += 1
        item_id = f"{self.name}-{self.added}"
        body = {"items": [{"id": item_id, "image": self.inputs.image(self.rng), "metadata": {"client": self.name}}]}
        if await self.call("POST /index/items", "POST", "/index/items", json=body) is not None:
            self.items.append(item_id)

    async def get(self) -> None:
        if self.items:
            await self.call("GET /index/items/{id}", "GET", f"/index/items/{self.rng.choice(self.items)}")

    async def delete(self) -> None:
        if self.items:
            item_id = self.items.pop(self.rng.randrange(len(self.items)))
            await self.call("DELETE /index/items/{id}", "DELETE", f"/index/items/{item_id}")

    async def search(self) -> None:
        terms = [{"text": self.inputs.text(self.rng)}] if not self.items else [
            {"id": self.rng.choice(self.items)}, {"difference": "the first is larger than the second", "weight": 0.8},
        ]  # fmt: skip
        body = {"terms": terms, "k": 5, "filter": {"client": self.name} if self.rng.random() < 0.3 else None}
        await self.call("POST /search", "POST", "/search", json=body)

    async def generate(self) -> None:
        body = {"prompt": self.inputs.text(self.rng), "steps": 2, "width": 64, "height": 64, "seed": 1,
                "edits": [{"text": "snowier", "weight": 0.5}]}  # fmt: skip
        accepted = await self.call("POST /generate", "POST", "/generate", expect=202, json=body)
        if accepted is None:
            return
        for _ in range(600):  # bounded poll: 600 × 0.1 s
            status = await self.call("GET /generate/{id}", "GET", f"/generate/{accepted['job_id']}")
            if status is None or status["status"] in ("done", "failed", "cancelled"):
                if status is not None and status["status"] != "done":
                    self.tally.error(f"generation ended {status['status']}: {status.get('error')}")
                return
            await asyncio.sleep(0.1)
        self.tally.error("generation did not finish within 60 s")

    async def info(self) -> None:
        await self.call("GET /info", "GET", "/info")

    async def health(self) -> None:
        await self.call("GET /health", "GET", "/health")

    async def metrics(self) -> None:
        await self.call("GET /metrics", "GET", "/metrics")


async def soak(server: Server, inputs: Inputs, args: argparse.Namespace, headers: dict) -> dict:
    tally = Tally()
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    rss: list[tuple[float, int]] = []
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=args.timeout, limits=limits) as http:
        mix = {name: weight for name, weight in MIX.items() if name not in args.without}
        clients = [SoakClient(n, http, inputs, tally, args.seed, mix) for n in range(args.clients)]
        started = time.monotonic()
        deadline = started + args.duration
        budget = [args.max_requests]

        async def sample_rss() -> None:
            reported = started
            while time.monotonic() < deadline:
                rss.append((time.monotonic() - started, server.rss_bytes()))
                if time.monotonic() - reported >= 30:  # progress on a long soak
                    reported = time.monotonic()
                    print(
                        f"soak {reported - started:.0f}/{args.duration:.0f} s: {tally.requests} requests, "
                        f"{len(tally.errors)} errors, RSS {mb(rss[-1][1])} MB",
                        file=sys.stderr,
                    )
                await asyncio.sleep(min(5.0, args.duration / 20))

        await asyncio.gather(sample_rss(), *(client.run(deadline, budget) for client in clients))
        elapsed = time.monotonic() - started
    warmup = args.warmup if args.warmup is not None else args.duration / 10
    baseline = next((value for at, value in rss if at >= warmup), rss[-1][1])
    end = server.rss_bytes()
    return {
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "requests": tally.requests,
        "requests_per_s": round(tally.requests / elapsed, 1),
        "errors": len(tally.errors),
        "first_errors": tally.errors[:10],
        "endpoints": tally.report(),
        "rss_mb": {
            "after_warmup": mb(baseline),
            "end": mb(end),
            "growth": mb(end - baseline),
            "max": mb(max(value for _, value in rss)),
            "warmup_s": round(warmup, 1),
        },
    }


# --- overload ------------------------------------------------------------------------------


async def overload(server: Server, inputs: Inputs, args: argparse.Namespace, headers: dict) -> dict:
    """Far more work than the queues hold: every answer must be quick success or a quick refusal."""
    tally = Tally()
    refusal_latencies: dict[str, list[float]] = defaultdict(list)
    success_latencies: dict[str, list[float]] = defaultdict(list)
    missing_retry_after = 0
    limits = httpx.Limits(max_connections=args.overload_clients, max_keepalive_connections=args.overload_clients)
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=args.timeout, limits=limits) as http:
        deadline = time.monotonic() + args.overload_duration
        budget = [args.max_requests]
        rng = random.Random(args.seed)
        embed_body = {"images": [inputs.image(rng) for _ in range(args.overload_batch)]}
        generate_body = {"prompt": "a forest", "steps": 2, "width": 64, "height": 64}

        async def client(number: int) -> None:
            nonlocal missing_retry_after
            endpoint, path, body, ok = (
                ("POST /generate", "/generate", generate_body, 202) if number % 8 == 0
                else ("POST /embed", "/embed", embed_body, 200)
            )  # fmt: skip
            while time.monotonic() < deadline and budget[0] > 0:
                budget[0] -= 1
                started = time.perf_counter()
                try:
                    response = await http.post(path, json=body)
                except httpx.TransportError as exc:
                    tally.add(endpoint, 0, time.perf_counter() - started)
                    tally.error(f"{endpoint}: {type(exc).__name__} (a hang or a dropped connection)")
                    continue
                seconds = time.perf_counter() - started
                tally.add(endpoint, response.status_code, seconds)
                if response.status_code in (429, 503):
                    refusal_latencies[endpoint].append(seconds)
                    if "retry-after" not in response.headers:
                        missing_retry_after += 1
                        tally.error(f"{endpoint}: {response.status_code} without Retry-After")
                    await asyncio.sleep(0.01)  # a client that ignores Retry-After: the worst case
                elif response.status_code == ok:
                    success_latencies[endpoint].append(seconds)
                else:
                    tally.error(f"{endpoint}: {response.status_code} {response.text[:300]}")

        started = time.monotonic()
        await asyncio.gather(*(client(n) for n in range(args.overload_clients)))
        elapsed = time.monotonic() - started
    refusals, successes = sum(refusal_latencies.values(), []), sum(success_latencies.values(), [])
    return {
        "clients": args.overload_clients,
        "images_per_request": args.overload_batch,
        "queue_limit": args.queue_limit,
        "seconds": round(elapsed, 1),
        "requests": tally.requests,
        "refused": len(refusals),
        "refusal_p50_ms": median_ms(refusals),
        "refusal_p99_ms": round(1000 * percentile(refusals, 0.99), 1) if refusals else None,
        "refusals_without_retry_after": missing_retry_after,
        "accepted": len(successes),
        "accepted_p50_ms": median_ms(successes),
        # An accepted /generate is only queued (202): the work a refusal must beat is an embed's.
        "embed_refusal_p50_ms": median_ms(refusal_latencies["POST /embed"]),
        "embed_accepted_p50_ms": median_ms(success_latencies["POST /embed"]),
        "slowest_answer_ms": round(1000 * max(refusals + successes, default=0.0), 1),
        "errors": len(tally.errors),
        "first_errors": tally.errors[:10],
        "endpoints": tally.report(),
    }


async def after(server: Server, inputs: Inputs, headers: dict) -> dict:
    """The server recovers: alive, ready, and serving a normal request."""
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        health = await http.get("/health")
        ready = await http.get("/ready")
        started = time.perf_counter()
        embed = await http.post("/embed", json={"images": [{"b64": inputs.images[0]}]})
        seconds = time.perf_counter() - started
    return {
        "alive": server.alive(),
        "health": health.status_code,
        "ready": ready.status_code,
        "embed": embed.status_code,
        "embed_ms": round(1000 * seconds, 1),
    }


def mb(value: int) -> float:
    return round(value / 2**20, 1)


def verdict(report: dict, args: argparse.Namespace) -> list[str]:
    """The gates that failed, in words."""
    failures = []
    if report["soak"]["errors"]:
        failures.append(f"soak: {report['soak']['errors']}+ errors")
    load = report["overload"]
    if load["errors"]:
        failures.append(f"overload: {load['errors']}+ errors")
    if not load["refused"]:
        failures.append("overload: nothing was refused — the load did not pass the queue limit")
    elif load["refusal_p99_ms"] > args.max_refusal_p99_ms:
        failures.append(f"overload: refusal p99 {load['refusal_p99_ms']} ms > {args.max_refusal_p99_ms} ms")
    elif (refused := load["embed_refusal_p50_ms"]) and (done := load["embed_accepted_p50_ms"]) and refused >= done:
        failures.append(f"overload: /embed refusals (p50 {refused} ms) are no faster than embeds done (p50 {done} ms)")
    recovered = report["after"]
    if not (recovered["alive"] and recovered["health"] == recovered["ready"] == recovered["embed"] == 200):
        failures.append(f"after overload: {recovered}")
    return failures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    inputs = Inputs.make(args.seed)
    api_key = "soak-" + base64.urlsafe_b64encode(random.Random(args.seed).randbytes(18)).decode()
    headers = {"Authorization": f"Bearer {api_key}"}
    with tempfile.TemporaryDirectory(prefix="pcclip-soak-") as scratch_name:
        scratch = Path(scratch_name)
        from models.generation.tiny import build_tiny_sdxl

        build_tiny_sdxl(seed=0).save_pretrained(scratch / "sdxl")
        settings = {
            "PCCLIP_MODEL": args.model,
            "PCCLIP_INDEX_DIR": str(scratch / "index"),
            "PCCLIP_SDXL_MODEL": str(scratch / "sdxl"),
            "PCCLIP_API_KEY": api_key,
            "PCCLIP_QUEUE_LIMIT": str(args.queue_limit),
            "PCCLIP_GENERATION_QUEUE_LIMIT": str(max(8, args.clients)),  # one job per soak client fits
            "PCCLIP_TORCH_THREADS": "1",
        }
        with loopback_server(settings, require=("index", "generator")) as server:
            report = {"gate": "soak", "model": args.model, "seed": args.seed}
            report["soak"] = asyncio.run(soak(server, inputs, args, headers))
            report["overload"] = asyncio.run(overload(server, inputs, args, headers))
            report["after"] = asyncio.run(after(server, inputs, headers))
            log_tail = server.log_tail()
    report["wall_s"] = round(time.monotonic() - started, 1)
    failures = verdict(report, args)
    report["failures"] = failures
    print(json.dumps(report, indent=2))
    if failures:
        print(f"server log:\n{log_tail}", file=sys.stderr)
    print("FAIL: " + "; ".join(failures) if failures else "PASS", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
