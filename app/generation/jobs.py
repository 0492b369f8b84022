"""Generation jobs: one worker thread (the GPU owner), a bounded queue, states, progress, TTL.

    queued ──▶ running ──▶ done | failed | cancelled
       └──────────────────────────────▶ cancelled   (cancelled before it ran)

Routes call `submit` / `status` / `cancel` from the event loop; they only take a lock and
never wait for the GPU. The worker runs one job at a time through `runner` (the SDXL bridge's
`generate`), whose step callback updates `progress` and raises `Cancelled` once a cancel was
asked for. Finished jobs are kept `ttl_s` seconds, then forgotten (404).
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from app.errors import NotFound, Overloaded
from models.generation.pipeline import Cancelled, GenerationRequest, GenerationResult, StepCallback

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: tuple[JobState, ...] = ("done", "failed", "cancelled")
Runner = Callable[[GenerationRequest, StepCallback], GenerationResult]


@dataclass
class Job:
    id: str
    request: GenerationRequest
    state: JobState = "queued"
    progress: float = 0.0  # 0–1: denoising steps done / (steps + 1 for decoding); 1 when done
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    cancel_requested: bool = False
    error: str | None = None
    png_b64: str | None = None
    report: dict[str, Any] | None = None
    version: int = 0  # bumped on every change (server-sent events poll it)
    _finished_mono: float | None = None


@dataclass(frozen=True)
class JobStatus:
    """A consistent copy of a job, safe to read outside the lock."""

    id: str
    state: JobState
    progress: float
    cancel_requested: bool
    created_at: float
    finished_at: float | None
    error: str | None
    png_b64: str | None
    report: dict[str, Any] | None
    request: GenerationRequest
    queue_position: int | None
    version: int

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class JobManager:
    def __init__(
        self,
        runner: Runner,
        *,
        queue_limit: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = runner
        self.queue_limit = queue_limit
        self.ttl_s = ttl_s
        self._clock = clock
        self._jobs: dict[str, Job] = {}
        self._pending: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="pcclip-generator", daemon=True)
        self._worker.start()

    # --- called from the event loop ------------------------------------------------------

    def submit(self, request: GenerationRequest) -> JobStatus:
        """Queue a job; `Overloaded` (429) when `queue_limit` jobs are already waiting."""
        with self._cond:
            self._sweep()
            if self._closed:
                raise Overloaded("the generator is shutting down")
            if len(self._pending) >= self.queue_limit:
                raise Overloaded(f"{len(self._pending)} generation jobs are already queued; retry later", retry_after=5)
            job = Job(id=uuid.uuid4().hex, request=request)
            self._jobs[job.id] = job
            self._pending.append(job)
            self._cond.notify_all()
            return self._status(job)

    def status(self, job_id: str) -> JobStatus:
        with self._cond:
            self._sweep()
            return self._status(self._get(job_id))

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a job: at once when queued; between two denoising steps when running;
        a finished job stays as it is."""
        with self._cond:
            job = self._get(job_id)
            if job.state == "queued":
                self._pending.remove(job)
                self._finish(job, "cancelled")
            elif job.state == "running" and not job.cancel_requested:
                job.cancel_requested = True
                job.version += 1
            return self._status(job)

    @property
    def queue_depth(self) -> int:
        with self._cond:
            return len(self._pending)

    def close(self) -> None:
        """Stop taking jobs; cancel the waiting and the running one; the worker exits."""
        with self._cond:
            self._closed = True
            while self._pending:
                self._finish(self._pending.popleft(), "cancelled")
            for job in self._jobs.values():
                if job.state == "running":
                    job.cancel_requested = True
            self._cond.notify_all()

    # --- the worker ----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._pending.popleft()
                job.state = "running"
                job.version += 1
            self._run(job)

    def _run(self, job: Job) -> None:
        def on_step(done: int, total: int) -> None:
            with self._cond:
                job.progress = max(job.progress, done / (total + 1))  # the +1 is decoding
                job.version += 1
                if job.cancel_requested:
                    raise Cancelled(job.id)

        try:
            result = self.runner(job.request, on_step)
            png = _png_b64(result.image)
        except Cancelled:
            with self._cond:
                self._finish(job, "cancelled")
            return
        except Exception as exc:  # noqa: BLE001 — reported in the job, the worker keeps going
            log.exception("generation job %s failed", job.id)
            with self._cond:
                self._finish(job, "failed", error=f"{type(exc).__name__}: {exc}")
            return
        with self._cond:
            job.png_b64, job.report = png, result.report.to_dict()
            job.progress = 1.0
            self._finish(job, "done")

    # --- under the lock ------------------------------------------------------------------

    def _get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no generation job {job_id!r} (unknown, or finished more than {self.ttl_s:g} s ago)")
        return job

    def _finish(self, job: Job, state: JobState, error: str | None = None) -> None:
        job.state, job.error = state, error
        job.finished_at, job._finished_mono = time.time(), self._clock()
        job.version += 1

    def _sweep(self) -> None:
        now = self._clock()
        expired = [
            job_id
            for job_id, job in self._jobs.items()
            if job._finished_mono is not None and now - job._finished_mono > self.ttl_s
        ]
        for job_id in expired:
            del self._jobs[job_id]

    def _status(self, job: Job) -> JobStatus:
        position = next((i for i, waiting in enumerate(self._pending) if waiting is job), None)
        return JobStatus(
            id=job.id,
            state=job.state,
            progress=job.progress,
            cancel_requested=job.cancel_requested,
            created_at=job.created_at,
            finished_at=job.finished_at,
            error=job.error,
            png_b64=job.png_b64,
            report=job.report,
            request=job.request,
            queue_position=position,
            version=job.version,
        )


def _png_b64(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
