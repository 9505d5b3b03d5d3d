"""Background jobs. In-process asyncio workers by default; RQ on Redis when scaled out.

A job is a name and one integer argument (a row id). Durability is the caller's: the outbox table
holds every queued message, so a job lost with the process is found again at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

_LOGGER = logging.getLogger(__name__)

JobHandler = Callable[[int], Awaitable[None]]


class JobQueue(Protocol):
    def register(self, name: str, handler: JobHandler) -> None: ...

    async def enqueue(self, name: str, arg: int, *, delay: float = 0.0) -> None: ...


class InProcessJobs:
    """A bounded pool of asyncio workers reading one queue; delayed jobs wait on the loop's timer."""

    def __init__(self, concurrency: int = 16) -> None:
        self._concurrency = concurrency
        self._handlers: dict[str, JobHandler] = {}
        self._queue: asyncio.Queue[tuple[str, int]] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._idle: asyncio.Event | None = None
        self._busy = 0
        self._stopping = False

    def register(self, name: str, handler: JobHandler) -> None:
        self._handlers[name] = handler

    async def start(self) -> None:
        self._stopping = False
        self._queue = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers = [
            asyncio.create_task(self._work(), name=f"job-worker-{i}") for i in range(self._concurrency)
        ]

    async def stop(self) -> None:
        self._stopping = True  # ends a worker whose handler lost the cancel (see _work)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []

    async def enqueue(self, name: str, arg: int, *, delay: float = 0.0) -> None:
        if name not in self._handlers:
            raise KeyError(f"no job handler named {name!r}")
        assert self._queue is not None and self._idle is not None, "jobs not started"
        self._idle.clear()
        if delay <= 0:
            self._queue.put_nowait((name, arg))
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            assert self._queue is not None
            self._queue.put_nowait((name, arg))

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def join(self) -> None:
        """Wait until nothing is queued, delayed or running (benchmarks and shutdown)."""
        assert self._idle is not None
        while True:
            await self._idle.wait()
            if self._is_idle():
                return
            self._idle.clear()

    def _is_idle(self) -> bool:
        assert self._queue is not None
        return self._queue.empty() and not self._timers and self._busy == 0

    async def _work(self) -> None:
        assert self._queue is not None and self._idle is not None
        while True:
            name, arg = await self._queue.get()
            self._busy += 1
            try:
                await self._handlers[name](arg)
            except Exception:
                _LOGGER.exception("job %s(%s) failed", name, arg)
            finally:
                self._busy -= 1
                if self._is_idle():
                    self._idle.set()
            # A handler can swallow stop()'s cancel (on 3.11 asyncio.wait_for, e.g. inside aiosmtplib,
            # returns normally when cancelled just as its wait completed): stop here, not on the queue.
            if self._stopping:
                return
