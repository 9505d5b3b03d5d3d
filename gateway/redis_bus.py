"""Across processes over Redis pub/sub: a "poke" after every commit that wrote events, and the cached
tables a commit changed (``RedisCacheDrops``).

The poke carries no event: each process's ``EventBus`` reads new rows from the event log in the
database, so ids, order and ``?after=`` resume are the same whichever gateway a client talks to, and a
lost poke only delays delivery. Pub/sub is fire-and-forget (a reconnect can miss messages), so the bus
is also poked on every reconnect and every ``fallback_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from typing import Any

from redis.asyncio import Redis

from inbox.caches import Caches
from inbox.events import EventBus

_LOGGER = logging.getLogger(__name__)

CHANNEL = "switchboard:events"


class RedisPokes:
    """Publishes this process's pokes and, when ``listen``, pokes the local bus on everyone's."""

    def __init__(
        self, redis_url: str, bus: EventBus, *, listen: bool, fallback_interval: float = 2.0
    ) -> None:
        self._url = redis_url
        self._bus = bus
        self._listen = listen
        self._fallback = fallback_interval
        self._origin = f"{os.getpid()}-{secrets.token_hex(4)}".encode()
        self._pending = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Redis | None = None

    def publish(self) -> None:
        """``EventBus.on_poke`` callback: coalesced, so a burst of commits costs one publish."""
        self._pending.set()

    async def start(self) -> None:
        self._redis = Redis.from_url(self._url, health_check_interval=30)
        self._bus.on_poke.append(self.publish)
        self._tasks.append(asyncio.create_task(self._publisher(), name="redis-poke-publisher"))
        if self._listen:
            self._tasks.append(asyncio.create_task(self._subscriber(), name="redis-poke-subscriber"))

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self._bus.on_poke.remove(self.publish)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _publisher(self) -> None:
        assert self._redis is not None
        while True:
            await self._pending.wait()
            self._pending.clear()
            try:
                await self._redis.publish(CHANNEL, self._origin)
            except Exception as exc:  # readers still catch up on their fallback poke
                _LOGGER.warning("could not publish an event poke: %s", exc)
                await asyncio.sleep(0.5)

    async def _subscriber(self) -> None:
        assert self._redis is not None
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._bus.poke()  # whatever was published while we were not subscribed
                    while True:
                        message = await pubsub.get_message(timeout=self._fallback)
                        if message is None or message.get("data") != self._origin:
                            # A poke from elsewhere, or quiet for a while: read the log either way.
                            self._bus.poke()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _LOGGER.warning("event pub/sub connection lost (%s); reconnecting", exc)
                self._bus.poke()
                await asyncio.sleep(1.0)


CACHE_CHANNEL = "switchboard:caches"


class RedisCacheDrops:
    """Tells the other processes which cached tables a local commit wrote, and drops theirs here.

    Every process listens (workers send too). Until subscribed, and whenever the connection is lost,
    the cache keeps nothing (``Caches.hold``): messages published meanwhile are lost to us.
    """

    def __init__(self, redis_url: str, caches: Caches) -> None:
        self._url = redis_url
        self._caches = caches
        self._origin = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._tables: set[str] = set()
        self._pending = asyncio.Event()
        self.subscribed = asyncio.Event()  # set while other processes' drops reach us
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Redis | None = None

    def publish(self, tables: frozenset[str]) -> None:
        """``Caches.on_commit`` callback: coalesced, so a burst of commits costs one publish."""
        self._tables |= tables
        self._pending.set()

    async def start(self) -> None:
        self._redis = Redis.from_url(self._url, health_check_interval=30)
        self._caches.hold()
        self._caches.on_commit.append(self.publish)
        self._tasks.append(asyncio.create_task(self._publisher(), name="redis-cache-publisher"))
        self._tasks.append(asyncio.create_task(self._subscriber(), name="redis-cache-subscriber"))

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self._caches.on_commit.remove(self.publish)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        self._caches.hold()

    async def _publisher(self) -> None:
        assert self._redis is not None
        while True:
            await self._pending.wait()
            self._pending.clear()
            tables, self._tables = self._tables, set()
            body = json.dumps({"origin": self._origin, "tables": sorted(tables)})
            try:
                await self._redis.publish(CACHE_CHANNEL, body)
            except Exception as exc:  # the others keep stale rows until their next reconnect
                _LOGGER.warning("could not publish a cache drop: %s", exc)
                self._tables |= tables
                await asyncio.sleep(0.5)
                self._pending.set()

    async def _subscriber(self) -> None:
        assert self._redis is not None
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CACHE_CHANNEL)
                    self._caches.release()
                    self.subscribed.set()
                    async for message in pubsub.listen():
                        self._received(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                self._caches.hold()
                _LOGGER.warning("cache pub/sub connection lost (%s); reconnecting", exc)
                await asyncio.sleep(1.0)

    def _received(self, data: object) -> None:
        try:
            body: Any = json.loads(data) if isinstance(data, (bytes, str)) else None
            origin, tables = str(body["origin"]), [str(n) for n in body["tables"]]
        except (ValueError, KeyError, TypeError):
            self._caches.drop()  # unreadable: forget everything rather than keep a stale row
            return
        if origin != self._origin:
            self._caches.drop(tables)
