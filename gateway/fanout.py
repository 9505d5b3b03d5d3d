"""What the live fan-outs share: the agents' stream (gateway/stream.py) and the visitors' widget sockets
(gateway/webchat/hub.py).

Each listens to the event bus once per process (``EventBus.listen``) and routes every event to the
sockets it concerns from its own index, instead of a bus queue, a task and two futures per socket per
event. An event is handled synchronously when everything needed is in memory; when a database read is
needed (an inbox's members, a conversation's visitor) it waits in one queue worked by one task, and
every later event waits behind it, so each socket still gets events in log order.

Frames are written to the socket's transport as pre-built bytes (one ``text_frame`` per event, shared by
every socket that gets it) without awaiting a drain: the socket's unsent bytes are checked instead, and
a socket over ``SLOW_CLIENT_BYTES`` is closed with ``CLOSE_FELL_BEHIND`` so the client resumes with
``after=`` from the event log. Sockets written this way are opened with ``compress=False``: the bytes are
the plain frames RFC 6455 §5.2 describes, with no per-message deflate (which would also cost each socket
its own zlib state).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import deque
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from inbox.events import LiveEvent

_LOGGER = logging.getLogger(__name__)

CLOSE_FELL_BEHIND = 4000
FELL_BEHIND = b"fell behind; reconnect with after="
SLOW_CLIENT_BYTES = 1 << 20  # unsent bytes a socket may hold before it counts as too slow
MAX_WAITING = 20_000  # events queued behind a database read before the fan-out gives up on its clients


def text_frame(payload: bytes) -> bytes:
    """One complete server-to-client text frame: FIN, opcode 1, no mask, no compression (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def write_frame(ws: web.WebSocketResponse, transport: asyncio.Transport | None, frame: bytes) -> bool:
    """Write a pre-built frame now. False when it was not written (socket closing) or when the socket now
    holds more than ``SLOW_CLIENT_BYTES`` unsent: the caller closes it with ``CLOSE_FELL_BEHIND``.

    ``transport`` is ``request.transport`` (duck-typed: uvloop's transports are not asyncio classes)."""
    if ws.closed or transport is None or transport.is_closing():
        return False
    transport.write(frame)
    return transport.get_write_buffer_size() <= SLOW_CLIENT_BYTES


class Background:
    """Tasks a fan-out starts and must not lose (closing slow sockets, its queue worker)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("fan-out task %s failed", task.get_name(), exc_info=task.exception())

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def close_fell_behind(background: Background, ws: web.WebSocketResponse) -> None:
    """Close a socket that fell behind (in a task: the close handshake may take a while)."""
    if not ws.closed:
        background.spawn(ws.close(code=CLOSE_FELL_BEHIND, message=FELL_BEHIND), "close-fell-behind")


class OrderedListener:
    """A bus listener that handles events in order: synchronously when it can, else through one queue.

    Subclasses implement ``handle_now`` (return False, having done nothing, when the event needs a
    database read) and ``handle`` (may await). ``give_up`` is called when the queue passes
    ``MAX_WAITING`` (the database is stuck): close every client so it resumes from the log later.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._waiting: deque[LiveEvent] = deque()
        self._worker: asyncio.Task[None] | None = None
        self.background = Background()

    def __call__(self, event: LiveEvent) -> None:
        if not self._waiting and self.handle_now(event):
            return
        if len(self._waiting) >= MAX_WAITING:
            _LOGGER.error("%s: %d events wait on the database; closing its clients", self._name, MAX_WAITING)
            self._waiting.clear()
            self.give_up()
            return
        self._waiting.append(event)
        if self._worker is None:
            self._worker = self.background.spawn(self._work(), f"{self._name}-worker")

    async def _work(self) -> None:
        try:
            while self._waiting:
                event = self._waiting[0]
                try:
                    await self.handle(event)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one odd event must not stop live updates for everyone
                    _LOGGER.exception("%s: failed to route event %s", self._name, event.id)
                if self._waiting and self._waiting[0] is event:
                    self._waiting.popleft()
        finally:
            self._worker = None

    def handle_now(self, event: LiveEvent) -> bool:
        raise NotImplementedError

    async def handle(self, event: LiveEvent) -> None:
        raise NotImplementedError

    def give_up(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        self._waiting.clear()
        await self.background.cancel_all()
