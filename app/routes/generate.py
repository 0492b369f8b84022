"""/generate: SDXL jobs conditioned on PC-CLIP embedding arithmetic (202 + job id, then poll or stream)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import StreamingResponse

from app.deps import JobsDep
from app.json_body import StrictJSONRoute
from app.schemas.common import ERROR_RESPONSES, ErrorResponse, Responses
from app.schemas.generate import GENERATE_EXAMPLES, GenerateAccepted, GenerateRequest, JobStatusResponse
from app.security import AccessDep
from app.services import generation as service

router = APIRouter(tags=["generate"], dependencies=[AccessDep], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)
NOT_FOUND: Responses = {
    404: {"model": ErrorResponse, "description": "Unknown job, or finished longer ago than the TTL."}
}
# One server-sent event: its `data` is a JSON JobStatusResponse (without the image).
SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "description": "The job's status."},
        "id": {"type": "string"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/JobStatusResponse"},
        },
    },
}


# OpenAPI links: what a client (and the fuzzer's stateful phase) can do next with the job id.
JOB_LINKS = {
    name: {"operationRef": f"#/paths/~1generate~1{{job_id}}{where}", "parameters": {"job_id": "$response.body#/job_id"}}
    for name, where in (("status", "/get"), ("events", "~1events/get"), ("cancel", "~1cancel/post"))
}


@router.post(
    "/generate",
    response_model=GenerateAccepted,
    status_code=202,
    summary="Queue an SDXL image of `prompt + Σ wᵢ · editᵢ`",
    responses={
        202: {"description": "Queued; follow `status_url`.", "links": JOB_LINKS},
        503: {"model": ErrorResponse, "description": "No SDXL weights configured, or still loading."},
    },
)
async def generate(
    body: Annotated[GenerateRequest, Body(openapi_examples=GENERATE_EXAMPLES)], jobs: JobsDep
) -> GenerateAccepted:
    return service.submit(jobs, body)


@router.get(
    "/generate/{job_id}",
    response_model=JobStatusResponse,
    summary="A job's status, progress and, when done, its image",
    responses=NOT_FOUND,
)
async def job_status(job_id: str, jobs: JobsDep) -> JobStatusResponse:
    return service.response(jobs.status(job_id))


@router.get(
    "/generate/{job_id}/events",
    response_class=StreamingResponse,
    summary="Server-sent events of a job's progress",
    responses={
        200: {
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
            "description": "`event: <status>` / `data: <JobStatusResponse without the image>` at every change, "
            "until the job is done, failed or cancelled.",
        },
        **NOT_FOUND,
    },
)
async def job_events(job_id: str, jobs: JobsDep) -> StreamingResponse:
    jobs.status(job_id)  # 404 now, not inside the stream
    return StreamingResponse(
        service.events(jobs, job_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/generate/{job_id}/cancel",
    response_model=JobStatusResponse,
    summary="Cancel a job (queued: at once; running: before its next step)",
    description="The job stays readable (`GET /generate/{job_id}`, status `cancelled`) until its TTL ends; "
    "cancelling a finished job changes nothing.",
    responses=NOT_FOUND,
)
async def cancel(job_id: str, jobs: JobsDep) -> JobStatusResponse:
    return service.response(jobs.cancel(job_id), with_image=False)
