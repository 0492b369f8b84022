"""The load of `bench/peers.py`: what each request carries, the two load generators, the figures.

A `Target` is one server's URL, path and request body; `load` drives it for one turn with wrk
(`bench/wrk.py`) or with an asynchronous httpx client, and returns a `Turn`, which adds up over
the rounds of one level and summarises as requests/s (counted, and closed-loop), latency and errors.

Between a turn's warm-up and its counted part, `settle` waits until the servers are idle: a
server goes on computing the answers of requests whose client has left (wrk drops its
connections when its time is up), and a turn must not start on another's leftover work.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from bench import wrk
from bench.serve import jpeg

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")
SUBJECTS = ("a red car", "two dogs", "a bowl of soup", "an old bridge", "a cat on a sofa", "three apples")
PLACES = ("in the rain", "at night", "on a beach", "in a kitchen", "near a river", "under a tree")


@dataclass
class Target:
    """A running server and how to ask it for one embedding."""

    name: str
    url: str
    path: str
    body: Callable[[str, str], dict]  # (kind, payload) → JSON request
    results: dict = field(default_factory=dict)


def openai_body(model: str) -> Callable[[str, str], dict]:
    def body(kind: str, payload: str) -> dict:
        if kind == "image":
            return {"model": model, "input": [f"data:image/jpeg;base64,{payload}"], "modality": "image"}
        return {"model": model, "input": [payload]}

    return body


def native_body(kind: str, payload: str) -> dict:
    return {"images": [{"b64": payload}]} if kind == "image" else {"texts": [payload]}




def photos(count: int = 28) -> list[str]:
    """Base64 of distinct 640×480 JPEG photos (skimage.data, with crops and mirror images)."""
    from skimage import data

    out = []
    for index in range(count):
        photo = Image.fromarray(getattr(data, PHOTOS[index % len(PHOTOS)])()).convert("RGB")
        variant = index // len(PHOTOS)
        width, height = photo.size
        photo = photo.crop((variant * width // 16, 0, width, height - variant * height // 16))
        if variant % 2:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out.append(base64.b64encode(jpeg(photo.resize((640, 480), Image.Resampling.BICUBIC))).decode())
    return out


class Payloads:
    """Images cycle through the photos; every text is new (a cache must not flatter either server)."""

    def __init__(self, images: list[str]) -> None:
        self.images = images
        self.sent = 0

    def next(self, kind: str) -> str:
        self.sent += 1
        if kind == "image":
            return self.images[self.sent % len(self.images)]
        n = self.sent
        return f"{SUBJECTS[n % 6]} {PLACES[n // 6 % 6]}, photo {n // 36}"


@dataclass
class Turn:
    """One server's counted requests at one level, over one or more turns.

    Two throughputs: `rps`, the answers that came within the turns, and `rps_closed_loop`,
    concurrency ÷ mean latency (Little's law for clients that send again as soon as answered).
    They agree unless the server answers in waves: 64 clients answered 64 at a time every ~2.5 s
    finish 5 or 6 waves in a 14 s turn, so `rps` moves by a sixth with the phase; the closed-loop
    rate does not.
    """

    concurrency: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0
    settled_s: float = 0.0  # waited before the counted part for the servers to go idle
    wrk_turns: list[dict] = field(default_factory=list)  # wrk's figures per turn (it keeps no latencies)

    def add(self, other: Turn) -> None:
        self.concurrency = self.concurrency or other.concurrency
        self.latencies += other.latencies
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error
        self.seconds += other.seconds
        self.settled_s += other.settled_s
        self.wrk_turns += other.wrk_turns

    def summary(self) -> dict:
        ok = len(self.latencies) + sum(turn["ok"] for turn in self.wrk_turns)
        latency = self._latency()
        mean_ms = latency["mean_ms"]
        return {
            "rps": round(ok / self.seconds, 2) if self.seconds else 0.0,
            "rps_closed_loop": round(1000 * self.concurrency / mean_ms, 2) if mean_ms else None,
            **latency,
            "ok": ok,
            "errors": self.errors + sum(turn["failed"] for turn in self.wrk_turns),
            "settled_s": round(self.settled_s, 1),
            **({"first_error": self.first_error[:200]} if self.first_error else {}),
        }

    def _latency(self) -> dict:
        """Mean, p50 and p99 in ms; over wrk's turns, the request-weighted mean of each."""
        if self.wrk_turns:
            total = sum(turn["requests"] for turn in self.wrk_turns)
            return {
                f"{q}_ms": round(sum(turn[f"{q}_ms"] * turn["requests"] for turn in self.wrk_turns) / total, 1)
                if total
                else None
                for q in ("mean", "p50", "p99")
            }
        ordered = sorted(self.latencies)
        if not ordered:
            return {"mean_ms": None, "p50_ms": None, "p99_ms": None}
        return {
            "mean_ms": round(1000 * statistics.fmean(ordered), 1),
            "p50_ms": round(1000 * statistics.median(ordered), 1),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        }


Settle = Callable[[], float]  # waits until the servers are idle; returns the seconds waited


def no_settle() -> float:
    return 0.0


async def drive(
    target: Target, kind: str, concurrency: int, seconds: float, payloads: Payloads, settle: Settle = no_settle
) -> Turn:
    """`concurrency` clients post one-item requests back to back (a closed loop).

    Counted: the requests that complete within `seconds` of the start; those still in flight then
    are awaited (so the next turn starts on an idle machine) but not counted.
    """
    turn = Turn(concurrency=concurrency, seconds=seconds)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=target.url, timeout=600, limits=limits) as client:

        async def post() -> httpx.Response:
            return await client.post(
                target.path, content=json.dumps(target.body(kind, payloads.next(kind))), headers=headers
            )

        await asyncio.gather(*(post() for _ in range(concurrency)))  # open the connections, warm the path
        turn.settled_s = await asyncio.to_thread(settle)
        end = time.perf_counter() + seconds

        async def worker() -> None:
            while (t0 := time.perf_counter()) < end:
                try:
                    response = await post()
                    error = "" if response.status_code == 200 else f"{response.status_code} {response.text}"
                except httpx.HTTPError as exc:
                    error = repr(exc)
                if time.perf_counter() > end:
                    return
                if error:
                    turn.errors += 1
                    turn.first_error = turn.first_error or error
                else:
                    turn.latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return turn


def drive_wrk(
    target: Target, kind: str, concurrency: int, seconds: float, payloads: Payloads, settle: Settle = no_settle
) -> Turn:
    """wrk's closed loop: a one-second warm-up, then `seconds` counted, each with bodies of its own.

    Texts are drawn for far more requests than a turn can make, so none repeats within a turn;
    images cycle through the photos, as with the httpx client.
    """
    count = len(payloads.images) if kind == "image" else int(seconds * 1000) + 4 * concurrency

    def bodies(n: int) -> list[str]:
        return [json.dumps(target.body(kind, payloads.next(kind))) for _ in range(n)]

    wrk.run(target.url, target.path, bodies(count if kind == "image" else 1000), concurrency, 1.0)
    settled_s = settle()
    figures = wrk.run(target.url, target.path, bodies(count), concurrency, seconds)
    if kind == "text" and figures["requests"] > count:
        raise RuntimeError(f"{target.name} answered {figures['requests']} texts, more than the {count} drawn")
    first_error = f"{figures['failed']} failed requests (wrk keeps no bodies)" if figures["failed"] else ""
    return Turn(concurrency, seconds=seconds, settled_s=settled_s, wrk_turns=[figures], first_error=first_error)


def load(
    client: str,
    target: Target,
    kind: str,
    concurrency: int,
    seconds: float,
    payloads: Payloads,
    settle: Settle = no_settle,
) -> Turn:
    if client == "wrk":
        return drive_wrk(target, kind, concurrency, seconds, payloads, settle)
    return asyncio.run(drive(target, kind, concurrency, seconds, payloads, settle))


# --- idle servers -------------------------------------------------------------------------


def process_cpu_s(pid: int) -> float:
    """CPU seconds a process has used, all its threads (utime + stime from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_quiet(
    pids: Sequence[int],
    *,
    busy_share: float = 0.05,
    window: float = 0.5,
    timeout: float = 120.0,
    cpu_seconds: Callable[[int], float] = process_cpu_s,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until the processes together use less than `busy_share` of one core over a `window`
    (at most `timeout` seconds); returns the seconds waited, counted in windows."""
    waited = 0.0
    used = sum(map(cpu_seconds, pids))
    while waited < timeout:
        sleep(window)
        waited += window
        now = sum(map(cpu_seconds, pids))
        if now - used < busy_share * window:
            return waited
        used = now
    raise TimeoutError(f"processes {list(pids)} still busy after {timeout:.0f} s")

