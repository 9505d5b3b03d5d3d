"""``switchboard worker``: an RQ worker that runs Switchboard's jobs.

RQ jobs are plain functions, and RQ 3 runs a coroutine job with ``asyncio.run`` — a new event loop per
job, which our database pool and adapters (bound to one loop) cannot live with. So the job function is
sync: ``run_job(name, arg)`` hands the registered async handler to one long-lived event loop on a
thread of this process, where one container (database, adapters, outbox) is built once and started
without HTTP. The worker is a ``SimpleWorker`` (no fork per job: a forked child would not have that
loop thread), so one worker process runs one job at a time; run several processes for more.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from prometheus_client import start_http_server
from rq import SimpleWorker, get_current_job

from gateway.config import Settings
from gateway.container import Container, build
from gateway.rq_jobs import RqJobs

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

# The one runtime of this worker process: RQ calls ``run_job`` by name, with nothing to carry state.
_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


class WorkerRuntime:
    """A container started on its own event loop thread; jobs run there one at a time."""

    def __init__(self, container: Container) -> None:
        if not isinstance(container.jobs, RqJobs):
            raise ValueError("a worker needs SWITCHBOARD_REDIS_URL (RQ jobs)")
        self.container = container
        self.jobs: RqJobs = container.jobs
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="switchboard-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.call(self.container.start())

    def stop(self) -> None:
        try:
            self.call(self.container.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the runtime's loop and wait for it. If the wait is interrupted (RQ's job
        timeout raises in this thread) the coroutine is cancelled too."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise


def install(runtime: WorkerRuntime | None) -> None:
    """Make ``runtime`` the one ``run_job`` uses in this process (the CLI and tests call this)."""
    global _runtime
    with _runtime_lock:
        _runtime = runtime


def current_runtime() -> WorkerRuntime:
    """The process's runtime; built from the environment on first use under a plain ``rq worker``."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            runtime = WorkerRuntime(build(Settings(), role="worker"))
            runtime.start()
            _runtime = runtime
        return _runtime


def run_job(name: str, arg: int) -> None:
    """The RQ job function: run the handler registered as ``name`` with ``arg``."""
    runtime = current_runtime()
    metrics = runtime.container.metrics
    job = get_current_job()
    if job is not None and job.enqueued_at is not None:
        enqueued = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=UTC)
        metrics.job_wait_seconds.labels(name).observe(
            max(0.0, (datetime.now(UTC) - enqueued).total_seconds())
        )
    started = time.perf_counter()
    try:
        runtime.call(_awaited(runtime.jobs.handler(name)(arg)))
    except BaseException:
        metrics.job_failures.labels(name).inc()
        raise
    finally:
        metrics.job_seconds.labels(name).observe(time.perf_counter() - started)


async def _awaited(awaitable: Awaitable[None]) -> None:
    await awaitable


def run_worker(settings: Settings, *, burst: bool = False) -> int:
    """Run until SIGTERM/SIGINT (RQ's warm shutdown: the job in hand finishes first)."""
    runtime = WorkerRuntime(build(settings, role="worker"))
    install(runtime)
    runtime.start()
    try:
        if settings.worker_metrics_port is not None:
            start_http_server(
                settings.worker_metrics_port,
                addr=settings.http_host,
                registry=runtime.container.metrics.registry,
            )
        worker = SimpleWorker([runtime.jobs.queue], connection=runtime.jobs.redis)
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
    finally:
        install(None)
        runtime.stop()
    return 0
