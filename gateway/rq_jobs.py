"""The ``JobQueue`` on RQ (Redis), used when ``SWITCHBOARD_REDIS_URL`` is set.

Gateways only enqueue; ``switchboard worker`` processes run the jobs (``gateway.worker.run_job``).
Duplicates are not prevented here: RQ pushes a repeated job id twice (rq#1701). Every handler is
safe to run twice instead — the outbox claims a message with a lease before sending it.

A handler that raises is retried by RQ (``Retry`` with the configured intervals, scheduled by the
workers' scheduler); after the last try the job stays in RQ's failed registry, where the admin API
lists it and can requeue it (``/api/v1/admin/jobs/failed``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.results import Result

from inbox.jobs import JobHandler

_LOGGER = logging.getLogger(__name__)

QUEUE_NAME = "switchboard"
RUN_JOB = "gateway.worker.run_job"  # by name: RQ imports it in the worker process
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def job_id_for(name: str, arg: int) -> str:
    """``outbox-dispatch-42-1a2b3c4d``: the row id shows which message a job is for; the suffix keeps
    a retry's job from overwriting the record of an earlier one (RQ ids must match [A-Za-z0-9_-]+)."""
    return f"{_UNSAFE.sub('-', name)}-{arg}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class FailedJob:
    id: str
    name: str
    arg: int
    error: str
    enqueued_at: datetime | None
    ended_at: datetime | None


class RqJobs:
    """Handlers are registered in every process (the worker looks them up by name); ``enqueue`` pushes
    ``run_job(name, arg)`` onto the queue, or schedules it with ``enqueue_in`` when delayed."""

    def __init__(
        self,
        redis_url: str,
        *,
        retry_intervals: list[float],
        job_timeout: int = 300,
        queue_name: str = QUEUE_NAME,
    ) -> None:
        self._redis_url = redis_url
        self._retry_intervals = [max(0, math.ceil(s)) for s in retry_intervals]
        self._job_timeout = job_timeout
        self._queue_name = queue_name
        self._handlers: dict[str, JobHandler] = {}
        self._redis: Redis | None = None
        self._queue: Queue | None = None

    # -- the JobQueue protocol --------------------------------------------------------------------

    def register(self, name: str, handler: JobHandler) -> None:
        self._handlers[name] = handler

    async def enqueue(self, name: str, arg: int, *, delay: float = 0.0) -> None:
        if name not in self._handlers:
            raise KeyError(f"no job handler named {name!r}")
        # redis-py here is the blocking client RQ needs; keep the event loop free while it talks.
        try:
            await asyncio.to_thread(self.enqueue_sync, name, arg, delay)
        except RedisError as exc:
            # The work is already durable in the database (JobQueue's contract): failing the caller
            # now would report a stored message as not stored. The sweeper enqueues it again.
            _LOGGER.error("could not enqueue %s(%s): %s; it will be picked up later", name, arg, exc)

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self.connect()

    async def stop(self) -> None:
        if self._redis is not None:
            self._redis.close()
        self._redis = None
        self._queue = None

    def connect(self) -> None:
        if self._redis is None:
            self._redis = Redis.from_url(self._redis_url, health_check_interval=30)
            self._queue = Queue(self._queue_name, connection=self._redis)

    # -- used by the worker and the admin API ------------------------------------------------------

    @property
    def queue(self) -> Queue:
        if self._queue is None:
            raise RuntimeError("RqJobs.start() was not called")
        return self._queue

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("RqJobs.start() was not called")
        return self._redis

    def handler(self, name: str) -> JobHandler:
        try:
            return self._handlers[name]
        except KeyError:
            raise KeyError(f"no job handler named {name!r} in this process") from None

    def enqueue_sync(self, name: str, arg: int, delay: float = 0.0) -> str:
        kwargs: dict[str, Any] = {
            "job_id": job_id_for(name, arg),
            "job_timeout": self._job_timeout,
            "result_ttl": 0,  # handlers return nothing; keep Redis small
            "description": f"{name}({arg})",
        }
        if self._retry_intervals:
            kwargs["retry"] = Retry(max=len(self._retry_intervals), interval=self._retry_intervals)
        if delay > 0:
            job = self.queue.enqueue_in(timedelta(seconds=delay), RUN_JOB, name, arg, **kwargs)
        else:
            job = self.queue.enqueue(RUN_JOB, name, arg, **kwargs)
        return str(job.id)

    def depth(self) -> dict[str, int]:
        """Jobs waiting, scheduled (delayed retries), running and failed — for metrics."""
        q = self.queue
        return {
            "queued": q.count,
            "scheduled": ScheduledJobRegistry(queue=q).count,  # type: ignore[no-untyped-call]
            "started": StartedJobRegistry(queue=q).count,
            "failed": FailedJobRegistry(queue=q).count,
        }

    def failed_jobs(self, limit: int = 100) -> list[FailedJob]:
        registry = FailedJobRegistry(queue=self.queue)
        ids = registry.get_job_ids(0, limit - 1, desc=True)
        jobs = Job.fetch_many(ids, connection=self.redis)
        out: list[FailedJob] = []
        for job_id, job in zip(ids, jobs, strict=True):
            if job is None:
                continue
            name, arg = [*job.args, None, None][:2]
            result = job.latest_result()
            error = result.exc_string if result is not None and result.type == Result.Type.FAILED else None
            out.append(
                FailedJob(
                    id=job_id,
                    name=str(name),
                    arg=int(arg) if isinstance(arg, int) else -1,
                    error=_last_line(error),
                    enqueued_at=_aware(job.enqueued_at),
                    ended_at=_aware(job.ended_at),
                )
            )
        return out

    def requeue_failed(self, job_id: str) -> bool:
        """Put a failed job back on the queue. False if there is no such failed job."""
        registry = FailedJobRegistry(queue=self.queue)
        try:
            registry.requeue(job_id)
        except (InvalidJobOperation, NoSuchJobError):
            return False
        return True

    def ping(self) -> bool:
        return bool(self.redis.ping())


def _last_line(exc_info: str | None) -> str:
    lines = [line for line in (exc_info or "").strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def _aware(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
