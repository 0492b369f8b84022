"""Between the routes and the job manager: the model request, the response."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

from app.errors import NotFound
from app.generation.jobs import JobManager, JobStatus
from app.schemas.generate import GenerateAccepted, GenerateRequest, JobStatusResponse
from models.generation.pipeline import Edit, GenerationRequest

EVENT_POLL_S = 0.05


def submit(jobs: JobManager, body: GenerateRequest) -> GenerateAccepted:
    # 1. The model's request (the schema checked the inputs, the operator's limits included);
    #    an unset seed is drawn now so the result can be reproduced
    request = GenerationRequest(
        prompt=body.prompt,
        edits=tuple(Edit(edit.text, edit.weight) for edit in body.edits),
        negative_prompt=body.negative_prompt,
        steps=body.steps,
        guidance=body.guidance,
        width=body.width,
        height=body.height,
        seed=body.seed if body.seed is not None else secrets.randbelow(2**63),
    )

    # 2. Queue it (429 when the queue is full)
    status = jobs.submit(request)
    return GenerateAccepted(
        job_id=status.id, status_url=f"/generate/{status.id}", events_url=f"/generate/{status.id}/events"
    )


def response(status: JobStatus, *, with_image: bool = True) -> JobStatusResponse:
    return JobStatusResponse(
        job_id=status.id,
        status=status.state,
        progress=status.progress,
        queue_position=status.queue_position,
        cancel_requested=status.cancel_requested,
        created_at=status.created_at,
        finished_at=status.finished_at,
        seed=status.request.seed,
        error=status.error,
        image_png_b64=status.png_b64 if with_image else None,
        report=status.report,
    )


async def events(jobs: JobManager, job_id: str) -> AsyncIterator[str]:
    """Server-sent events: one `event: <status>` with the job's status (without the image) at
    every change, until the job has finished (or expired)."""
    version = -1
    while True:
        try:
            status = jobs.status(job_id)
        except NotFound:
            return
        if status.version != version:
            version = status.version
            data = response(status, with_image=False).model_dump_json()  # one line
            yield f"event: {status.state}\nid: {version}\ndata: {data}\n\n"
        if status.finished:
            return
        await asyncio.sleep(EVENT_POLL_S)
