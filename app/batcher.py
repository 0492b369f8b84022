"""Micro-batcher: one worker thread owns the encoder and merges concurrent requests.

Requests enqueue a job (a batch of preprocessed image pixels, or a list of texts) carrying its own future and return at
once; the worker takes the oldest job, adds every queued job of the same kind up to
`max_batch` items — waiting at most `max_wait_ms` after the oldest job arrived for more to
join, and up to `patience` times the last forward of that kind longer while more are on their
way (image requests still decoding, or fewer items than the last batch held) and the model is not
the bottleneck (no job was already waiting when it came free) — runs one forward
pass and hands each job its rows, checked finite and copied out of the batch. The patience keeps
a wave of concurrent requests in one batch: without it, the requests that reach the queue a
moment after the model came free wait a whole forward pass more, for the next batch. That
tensor work stays on the worker: a torch op releases the GIL and must win it back, which on a
busy event loop costs up to the interpreter's switch interval (5 ms) per op. The queue is
bounded in items: a job that does not fit is refused at the door with `Overloaded` (→ 429). The
decoded pixels of the requests still turning images into tensors are bounded too
(`PixelBudget`). The event loop only ever awaits futures; it never runs the model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch

from app.errors import NotReady, Overloaded
from app.hangup import answer
from app.memory import release_free_memory_soon

log = logging.getLogger(__name__)

TRIM_AFTER_PIXELS = 64 * 2**20  # pixels decoded before a drained budget gives free memory back (7 s of photos at 30/s)

Kind = Literal["pixels", "text"]


class BatchEncoder(Protocol):
    """The part of `models.Encoder` the batcher uses."""

    def encode_pixels(self, pixels: torch.Tensor, batch_size: int = ...) -> torch.Tensor: ...

    def encode_texts(self, texts: Sequence[str], batch_size: int = ...) -> torch.Tensor: ...


class NonFiniteOutput(RuntimeError):
    """The model gave a NaN or infinite value for an input: a model fault, never sent (→ 500)."""


@dataclass
class _Job:
    kind: Kind
    items: torch.Tensor | list[str]  # (n, 3, H, W) pixels, or n texts
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


class PixelBudget:
    """Decoded image pixels in flight across requests, bounded like the item queue.

    A request `hold`s its images' pixel count (read from their headers) before it decodes any,
    and gives back each image's share as soon as that image has become the model's input; what
    is left is given back on exit, also when the request fails. Beyond the limit it is refused
    with `Overloaded` (→ 429) before decoding. Thread-safe: requests decode in worker threads.

    When the last request decoding exits and at least `trim_after` pixels were held since the
    last time, it calls `trim` (`app.memory.release_free_memory_soon`): the memory of the decoded
    images goes back to the operating system after a burst.
    """

    def __init__(
        self,
        limit: int,
        clock: Callable[[], float] = time.monotonic,
        trim_after: int = TRIM_AFTER_PIXELS,
        trim: Callable[[], object] = release_free_memory_soon,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._held = 0
        self._lock = threading.Lock()
        self._seconds_per_pixel = 2e-8  # running estimate of decoding one pixel, for Retry-After
        self._trim_after = trim_after
        self._trim = trim
        self._held_since_trim = 0  # pixels held since `trim` last ran

    @property
    def held(self) -> int:
        """Pixels reserved by requests now decoding."""
        return self._held

    @contextmanager
    def hold(self, count: int) -> Iterator[Callable[[int], None]]:
        """Reserve `count` pixels or refuse now; yields `release(pixels)` for each image done."""
        with self._lock:
            # An empty budget admits any request, so one larger than the limit is slow, not refused forever.
            if self._held and self._held + count > self.limit:
                raise Overloaded(
                    f"server busy: {self._held} decoded image pixels in flight (limit {self.limit}); retry later",
                    retry_after=(self._held + count - self.limit) * self._seconds_per_pixel,
                )
            self._held += count
            self._held_since_trim += count
        left, since = count, self._clock()

        def release(pixels: int) -> None:
            nonlocal left, since
            pixels, now = min(pixels, left), self._clock()
            with self._lock:
                self._held -= pixels
                if pixels:
                    self._seconds_per_pixel = 0.9 * self._seconds_per_pixel + 0.1 * (now - since) / pixels
            left, since = left - pixels, now

        try:
            yield release
        finally:
            with self._lock:
                self._held -= left
                drained = self._held == 0 and self._held_since_trim >= self._trim_after
                if drained:
                    self._held_since_trim = 0
            if drained:
                self._trim()


@dataclass
class BatchStats:
    """Counters the worker updates; read them for metrics and tests."""

    batches: int = 0
    items: int = 0
    largest_batch: int = 0


class MicroBatcher:
    def __init__(
        self,
        encoder: BatchEncoder,
        *,
        max_batch: int = 64,
        image_chunk: int | None = None,
        max_wait_ms: float = 2.0,
        queue_limit: int = 1024,
        pixels_in_flight: int = 67_108_864,
        patience: float = 0.25,
        on_batch: Callable[[Kind, int, float], None] | None = None,
    ) -> None:
        self.encoder = encoder
        self.max_batch = max_batch
        self.image_chunk = min(image_chunk or max_batch, max_batch)  # images per forward call
        self.max_wait = max_wait_ms / 1000.0
        self.patience = patience
        self.queue_limit = queue_limit
        self.stats = BatchStats()
        self.pixels = PixelBudget(pixels_in_flight)
        self._on_batch = on_batch
        self._queues: dict[Kind, deque[_Job]] = {"pixels": deque(), "text": deque()}
        self._pending = 0  # items queued, not yet taken by the worker
        self._admitted = 0  # items of admitted requests still being decoded (see `admit`)
        self._cond = threading.Condition()
        self._closed = False
        self._seconds_per_item = 0.01  # running estimate, for Retry-After
        self._last_forward: dict[Kind, float] = {"pixels": 0.0, "text": 0.0}  # seconds
        self._last_size: dict[Kind, int] = {"pixels": 0, "text": 0}  # items
        self._model_free_since = 0.0  # monotonic time the last forward ended
        self._thread = threading.Thread(target=self._run, name="pcclip-batcher", daemon=True)
        self._thread.start()

    # --- caller side (event loop) ----------------------------------------------------------

    async def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) preprocessed pixels → (N, D) float32, L2-normalized.

        Raises `Overloaded` when the queue is full, `NotReady` after `close`, `ClientGone` when the
        client of the request being served hangs up first (`app.hangup`: its job is dropped).
        """
        return await answer(self.submit("pixels", pixels))

    async def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """N texts → (N, D) float32, L2-normalized."""
        return await answer(self.submit("text", list(texts)))

    @contextmanager
    def admit(self, count: int) -> Iterator[None]:
        """Hold room for `count` items while a request decodes its images, or refuse it now.

        Decoding is the costly part of an image request; under overload a refusal must come
        before it, not after. Items being decoded count against the queue limit with those
        queued; the room is released on exit, just before the request `submit`s its job.
        """
        with self._cond:
            if self._closed:
                raise NotReady("the model is shutting down")
            self._check_room(count, self._pending + self._admitted)
            self._admitted += count
        decoded = False
        try:
            yield
            decoded = True
        finally:
            with self._cond:
                self._admitted -= count
                if not decoded:
                    self._cond.notify()  # a patient worker stops waiting for it (on success, `submit` notifies)

    def _check_room(self, count: int, taken: int) -> None:
        # An empty queue admits any job, so one larger than the limit is slow, not refused forever.
        if taken and taken + count > self.queue_limit:
            raise Overloaded(
                f"server busy: {taken} items queued or decoding (limit {self.queue_limit}); retry later",
                retry_after=(taken + count) * self._seconds_per_item,
            )

    def submit(self, kind: Kind, items: torch.Tensor | list[str]) -> Future:
        job = _Job(kind, items)
        if len(job.items) == 0:
            raise ValueError("a batcher job needs at least one item")
        with self._cond:
            if self._closed:
                raise NotReady("the model is shutting down")
            self._check_room(len(job.items), self._pending)
            self._queues[kind].append(job)
            self._pending += len(job.items)
            self._cond.notify()
        return job.future

    @property
    def queue_depth(self) -> int:
        """Items waiting for the model."""
        return self._pending

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking jobs, fail the queued ones, and let the running batch finish."""
        with self._cond:
            self._closed = True
            dropped = [job for q in self._queues.values() for job in q]
            for q in self._queues.values():
                q.clear()
            self._pending = 0
            self._cond.notify_all()
        for job in dropped:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(NotReady("the model is shutting down"))
        self._thread.join(timeout)

    # --- worker side -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            jobs = self._take_batch()
            if jobs is None:
                return
            self._process(jobs)

    def _take_batch(self) -> list[_Job] | None:
        """Block for the oldest job, then gather same-kind jobs until full or its wait is up.

        Its wait is `max_wait` after it arrived, longer by the patience (`_patient`).
        """
        with self._cond:
            while not self._closed and not any(self._queues.values()):
                self._cond.wait()
            if self._closed:
                return None
            kind = self._oldest_kind()
            queue = self._queues[kind]
            deadline = queue[0].enqueued + self.max_wait
            patient_deadline = deadline + self.patience * self._last_forward[kind]
            jobs: list[_Job] = []
            size = 0
            while True:
                while queue and (not jobs or size + len(queue[0].items) <= self.max_batch):
                    job = queue.popleft()
                    self._pending -= len(job.items)
                    jobs.append(job)
                    size += len(job.items)
                if size >= self.max_batch or queue or self._closed:
                    return jobs
                remaining = (patient_deadline if self._patient(kind, jobs, size) else deadline) - time.monotonic()
                if remaining <= 0:
                    return jobs
                self._cond.wait(remaining)

    def _patient(self, kind: Kind, jobs: list[_Job], size: int) -> bool:
        """Whether to wait for more: some are likely on their way (image requests still decoding,
        or fewer items than the last batch held), no job of the other kind waits, and the model
        is not the bottleneck — a job that was already queued when it came free says it is, and
        idling it then costs throughput."""
        coming = (kind == "pixels" and self._admitted > 0) or size < self._last_size[kind]
        others_wait = any(q for other, q in self._queues.items() if other != kind)
        backlog = jobs[0].enqueued < self._model_free_since
        return coming and not others_wait and not backlog

    def _oldest_kind(self) -> Kind:
        heads = {kind: q[0].enqueued for kind, q in self._queues.items() if q}
        return min(heads, key=heads.__getitem__)

    def _process(self, jobs: list[_Job]) -> None:
        # Jobs whose caller went away (cancelled future) are dropped before the forward pass.
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        kind = jobs[0].kind
        items = _merge(kind, [job.items for job in jobs])
        start = time.perf_counter()
        try:
            out = self._encode(kind, items)
        except Exception as exc:  # noqa: BLE001 — reported per job, never kills the worker
            if len(jobs) == 1:
                jobs[0].future.set_exception(exc)
                return
            # One bad job must not fail the others merged with it: run each alone.
            log.warning("batch of %d jobs failed (%s); retrying them one by one", len(jobs), exc)
            for job in jobs:
                try:
                    job.future.set_result(self._encode(kind, job.items))
                except Exception as job_exc:  # noqa: BLE001
                    job.future.set_exception(job_exc)
            return
        elapsed = time.perf_counter() - start
        self._record(kind, len(items), elapsed)
        finite = torch.isfinite(out).all(dim=1).tolist()
        offset = 0
        for job in jobs:
            end = offset + len(job.items)
            if all(finite[offset:end]):
                job.future.set_result(out[offset:end].clone())
            else:
                job.future.set_exception(NonFiniteOutput("the model produced non-finite values"))
            offset = end

    def _encode(self, kind: Kind, items: torch.Tensor | list[str]) -> torch.Tensor:
        try:
            if kind == "pixels" and isinstance(items, torch.Tensor):
                return self.encoder.encode_pixels(items, batch_size=self.image_chunk)
            if kind == "text" and isinstance(items, list):
                return self.encoder.encode_texts(items, batch_size=self.max_batch)
            raise TypeError(f"a {kind!r} job cannot hold {type(items).__name__} items")
        finally:
            self._model_free_since = time.monotonic()  # before any job hears back

    def _record(self, kind: Kind, size: int, elapsed: float) -> None:
        self.stats.batches += 1
        self.stats.items += size
        self.stats.largest_batch = max(self.stats.largest_batch, size)
        self._seconds_per_item = 0.9 * self._seconds_per_item + 0.1 * (elapsed / size)
        self._last_forward[kind], self._last_size[kind] = elapsed, size
        if self._on_batch is not None:
            self._on_batch(kind, size, elapsed)


def _merge(kind: Kind, parts: list) -> torch.Tensor | list[str]:
    if kind == "pixels":
        return parts[0] if len(parts) == 1 else torch.cat(parts)
    return [text for part in parts for text in part]
