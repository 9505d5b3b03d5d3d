"""Run a long-lived task once across the cluster (a channel's poller, the lost-send sweeper).

``leases.run_exclusive(key, body)`` keeps trying to take the lease ``key``; the process that holds it
runs ``body()`` and renews the lease every third of its time to live. When the holder dies (even by
SIGKILL) its lease expires and another process takes it over within ``ttl`` plus one try interval.
If a holder cannot renew in time (a long GC pause, a Redis outage) it cancels ``body`` before anyone
else can have started it.

With Redis: ``SET key token NX PX ttl`` to take, compare-and-``PEXPIRE`` to renew, compare-and-``DEL``
to let go. Embedded (no Redis) there is one process, so the lease is always granted.

How a polling adapter uses it: do not start the poll loop in ``start()``; implement
``async def poll_forever(self) -> None`` (runs until cancelled, reconnecting on errors) instead. The
adapter registry (gateway/adapters.py) runs it under the lease ``poller:<channel id>`` in whichever
gateway process holds it, and cancels it on ``stop()``. An adapter that only sometimes polls (Telegram
in webhook mode, email without IMAP) sets ``polling = False`` then, and no lease is taken for it.
Worker processes never run pollers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, runtime_checkable

from redis.asyncio import Redis

_LOGGER = logging.getLogger(__name__)

Body = Callable[[], Coroutine[Any, Any, None]]

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


async def _release(redis: Redis, redis_key: str, token: str) -> None:
    await redis.eval(_RELEASE, 1, redis_key, token)  # type: ignore[misc]


@runtime_checkable
class Poller(Protocol):
    """An adapter with a loop that must run in one process of the cluster at a time."""

    async def poll_forever(self) -> None: ...


class Exclusive:
    """One ``run_exclusive`` in progress: ``held`` tells whether this process runs it now."""

    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task
        self.held = asyncio.Event()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Leases(Protocol):
    def run_exclusive(self, key: str, body: Body) -> Exclusive: ...

    async def close(self) -> None: ...


class LocalLeases:
    """One process: every lease is granted; ``body`` is restarted if it returns or fails."""

    def __init__(self, restart_delay: float = 1.0) -> None:
        self._restart_delay = restart_delay

    def run_exclusive(self, key: str, body: Body) -> Exclusive:
        holder: Exclusive

        async def run() -> None:
            holder.held.set()
            while True:
                try:
                    await body()
                except Exception:
                    _LOGGER.exception("%s failed; restarting", key)
                await asyncio.sleep(self._restart_delay)

        holder = Exclusive(asyncio.create_task(run(), name=f"exclusive:{key}"))
        return holder

    async def close(self) -> None:
        return None


class RedisLeases:
    def __init__(self, redis_url: str, *, ttl: float = 15.0, prefix: str = "switchboard:lease:") -> None:
        self._url = redis_url
        self._ttl_ms = int(ttl * 1000)
        self._prefix = prefix
        self._redis: Redis | None = None

    def _client(self) -> Redis:
        if self._redis is None:
            self._redis = Redis.from_url(self._url, health_check_interval=30)
        return self._redis

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def owner(self, key: str) -> str | None:
        """The token of the current holder (for tests and diagnostics)."""
        value = await self._client().get(self._prefix + key)
        return value.decode() if value is not None else None

    def run_exclusive(self, key: str, body: Body) -> Exclusive:
        holder: Exclusive
        redis_key = self._prefix + key
        interval = self._ttl_ms / 3000

        async def run() -> None:
            redis = self._client()
            while True:
                token = secrets.token_hex(16)
                try:
                    taken = await redis.set(redis_key, token, nx=True, px=self._ttl_ms)
                except Exception as exc:
                    _LOGGER.warning("lease %s: redis unavailable (%s)", key, exc)
                    taken = False
                if not taken:
                    await asyncio.sleep(interval)
                    continue
                _LOGGER.info("lease %s taken; running it here", key)
                holder.held.set()
                try:
                    await self._hold(redis, redis_key, token, body, interval)
                finally:
                    holder.held.clear()
                    with contextlib.suppress(Exception):
                        await asyncio.shield(_release(redis, redis_key, token))
                await asyncio.sleep(interval)  # give another process a turn after a failure

        holder = Exclusive(asyncio.create_task(run(), name=f"exclusive:{key}"))
        return holder

    async def _hold(self, redis: Redis, redis_key: str, token: str, body: Body, interval: float) -> None:
        work = asyncio.create_task(body(), name=f"leased:{redis_key}")
        loop = asyncio.get_running_loop()
        renewed_at = loop.time()
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=interval)
                if work.done():
                    break
                try:
                    ok = await redis.eval(_RENEW, 1, redis_key, token, self._ttl_ms)  # type: ignore[misc]
                except Exception as exc:
                    _LOGGER.warning("lease %s: renewal failed (%s)", redis_key, exc)
                    ok = 1 if loop.time() - renewed_at < (self._ttl_ms / 1000) * 2 / 3 else 0
                else:
                    renewed_at = loop.time()
                if not ok:
                    _LOGGER.warning("lease %s lost; stopping its task here", redis_key)
                    return
            if not work.cancelled() and work.exception() is not None:
                _LOGGER.error("leased task %s failed", redis_key, exc_info=work.exception())
        finally:
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
