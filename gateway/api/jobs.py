"""Dead letters of the job queue (scale-out): jobs that failed after their retries, and requeueing them.

Admins only. With the embedded in-process jobs there is no failed registry: sends that cannot go are
``failed`` messages with a reason, and the list is empty.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from gateway.api.admin import require_admin
from gateway.api.context import container_of
from gateway.api.errors import ApiError
from gateway.api.spec import ApiRoutes, Page

api = ApiRoutes()
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class FailedJobView(BaseModel):
    id: str
    name: str  # the handler, e.g. outbox.dispatch
    arg: int  # its row id, e.g. the message id
    error: str  # the last line of the exception
    enqueued_at: datetime | None
    ended_at: datetime | None


class FailedQuery(BaseModel):
    limit: int = Field(default=100, ge=1, le=1000)


class Requeued(BaseModel):
    id: str
    requeued: bool


@api.route(
    "GET",
    "/admin/jobs/failed",
    summary="Jobs that failed after their retries, newest first (admins)",
    query=FailedQuery,
    response=Page[FailedJobView],
)
async def list_failed(request: web.Request, query: FailedQuery) -> Page[FailedJobView]:
    require_admin(request)
    rq = container_of(request).rq
    if rq is None:
        return Page[FailedJobView](items=[])
    jobs = await asyncio.to_thread(rq.failed_jobs, query.limit)
    return Page[FailedJobView](items=[FailedJobView(**vars(j)) for j in jobs])


@api.route(
    "POST",
    "/admin/jobs/failed/{id}/requeue",
    summary="Put a failed job back on the queue (admins)",
    response=Requeued,
)
async def requeue_failed(request: web.Request) -> Requeued:
    require_admin(request)
    job_id = request.match_info["id"]
    if not _JOB_ID.match(job_id):
        raise ApiError(400, "bad_id", "id must be an RQ job id ([A-Za-z0-9_-]+)")
    rq = container_of(request).rq
    if rq is None or not await asyncio.to_thread(rq.requeue_failed, job_id):
        raise ApiError(404, "not_found", f"failed job {job_id} does not exist")
    return Requeued(id=job_id, requeued=True)
