"""The live stream: ``/api/v1/stream?after=<event_id>``.

On connect the client first gets every event after ``after`` that it may see (from the log), then live
events as they commit, in id order with no gap and no repeat. Without ``after`` it starts from now.
A client that falls too far behind (more than ``SLOW_CLIENT_BYTES`` unsent, or too many events queued
while its log replay runs) is closed with code 4000 and resumes with ``after=``.

One ``StreamHub`` per process fans events out (see gateway/fanout.py): per event it checks visibility
against a per-process cache of inbox members (read once per inbox, refreshed at most every
``MEMBERS_TTL`` seconds, so membership changes reach open streams within that time), builds the frame
once, and writes it to every client that may see it; the events routed between two flushes go to each
socket in one write (``StreamHub.flush``).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import deque
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, WSMsgType, web
from sqlalchemy import select

from gateway.api.context import CONTAINER, container_of, user_of
from gateway.api.errors import ApiError
from gateway.fanout import (
    CLOSE_FELL_BEHIND,
    OrderedListener,
    close_fell_behind,
    text_frame,
    write_frame,
)
from inbox import tables as t
from inbox.access import is_admin
from inbox.db import Database
from inbox.events import EventBus, LiveEvent

__all__ = ["CLOSE_FELL_BEHIND", "StreamHub", "add_routes", "stream"]

MEMBERS_TTL = 1.0  # seconds an inbox's member list is trusted
MAX_REPLAY_BACKLOG = 10_000  # live events held for a client while its log replay runs
# The least time from the end of a flush to the start of the next; the wait is as long as the last
# flush took, if longer. An event after a quiet spell goes out at once; under a stream of events to
# many sockets, writing takes at most half of the loop's time and each socket gets the events of the
# wait in one write (a write costs ~4 µs of kernel time for 500 bytes as for 8 kB: at 200 events/s and
# 2,000 sockets, one write per event would be 400,000 writes/s, more than a core).
FLUSH_INTERVAL = 0.002


class _Client:
    """One stream socket. ``pending`` holds live events while the log is replayed; None once live."""

    __slots__ = ("account_id", "admin", "last", "pending", "transport", "user_id", "ws")

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, user: t.User, last: int) -> None:
        self.ws = ws
        self.transport = request.transport
        self.user_id = user.id
        self.account_id = user.account_id
        self.admin = is_admin(user)
        self.last = last
        self.pending: deque[LiveEvent] | None = deque()


_Routed = tuple[LiveEvent, bytes, "frozenset[int] | None"]  # an event, its frame, who may see it


class StreamHub(OrderedListener):
    """Every stream socket of this process, by account; one bus listener for all of them.

    Routed events are written by ``flush``: at the end of the loop's turn when the last flush ended as
    long ago as it took (at least ``FLUSH_INTERVAL``), else when it will have. Each socket gets all of
    its frames of a flush in one ``transport.write``, and sockets that see the same events get the same
    joined bytes (built once). A quiet stream writes every event at once; a busy one writes fewer,
    larger chunks (a socket write costs about the same for one frame as for ten), so the more sockets
    and events, the less each frame costs, for up to one flush's duration of added latency.
    """

    def __init__(self, db: Database, bus: EventBus) -> None:
        super().__init__("stream")
        self._db = db
        self._bus = bus
        self._clients: dict[int, set[_Client]] = {}
        self._members: dict[int, tuple[float, frozenset[int]]] = {}  # inbox -> (read at, user ids)
        self._routed: dict[int, list[_Routed]] = {}  # account -> events routed since the last flush
        self._flush: asyncio.Handle | None = None
        self._next_flush = -math.inf  # loop time before which no flush starts (unless forced)
        self.flush_interval = FLUSH_INTERVAL
        self.position = 0  # the last event handed to every live client

    def start(self) -> None:
        self._bus.listen(self)

    async def close(self) -> None:
        self._bus.unlisten(self)
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._routed.clear()
        await super().close()

    def add(self, client: _Client) -> None:
        self._clients.setdefault(client.account_id, set()).add(client)

    def remove(self, client: _Client) -> None:
        clients = self._clients.get(client.account_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self._clients[client.account_id]

    def send_to_user(self, account_id: int, user_id: int, data: str) -> None:
        """One frame for one user's live sockets (a notification), outside the event order."""
        frame = text_frame(data.encode())
        for client in list(self._clients.get(account_id, ())):
            if client.user_id == user_id and client.pending is None:
                write_frame(client.ws, client.transport, frame)

    # -- visibility -------------------------------------------------------------------------------------

    def _fresh_members(self, inbox_id: int) -> frozenset[int] | None:
        cached = self._members.get(inbox_id)
        if cached is None or asyncio.get_running_loop().time() - cached[0] > MEMBERS_TTL:
            return None
        return cached[1]

    async def members(self, inbox_id: int) -> frozenset[int]:
        """Who (besides admins) may see this inbox's events: one read per inbox per ``MEMBERS_TTL``."""
        fresh = self._fresh_members(inbox_id)
        if fresh is not None:
            return fresh
        async with self._db.read() as session:
            ids = frozenset(
                await session.scalars(select(t.InboxMember.user_id).where(t.InboxMember.inbox_id == inbox_id))
            )
        self._members[inbox_id] = (asyncio.get_running_loop().time(), ids)
        return ids

    async def visible(self, client: _Client, event: LiveEvent) -> bool:
        if client.admin or event.inbox_id is None:
            return True
        return client.user_id in await self.members(event.inbox_id)

    # -- fan-out ---------------------------------------------------------------------------------------

    def handle_now(self, event: LiveEvent) -> bool:
        clients = self._clients.get(event.account_id)
        if not clients:
            self.position = event.id
            return True
        members = None
        if event.inbox_id is not None:
            members = self._fresh_members(event.inbox_id)
            if members is None and not all(c.admin for c in clients):
                return False  # read the members first (handle)
        self._route(event, members)
        return True

    async def handle(self, event: LiveEvent) -> None:
        members = None
        if event.inbox_id is not None and self._clients.get(event.account_id):
            members = await self.members(event.inbox_id)
        self._route(event, members)

    def _route(self, event: LiveEvent, members: frozenset[int] | None) -> None:
        """Queue the event for the next ``flush`` (members None: everyone of the account sees it)."""
        if event.account_id in self._clients:
            routed = self._routed.setdefault(event.account_id, [])
            routed.append((event, text_frame(event.json.encode()), members))
            if self._flush is None:
                loop = asyncio.get_running_loop()
                wait = self._next_flush - loop.time()
                self._flush = loop.call_soon(self.flush) if wait <= 0 else loop.call_later(wait, self.flush)
        self.position = event.id

    def flush(self) -> None:
        """Write every event routed since the last flush: one write per socket."""
        if self._flush is not None:
            self._flush.cancel()  # called early (before a pong): the scheduled one has nothing to do
            self._flush = None
        loop = asyncio.get_running_loop()
        started = loop.time()
        routed, self._routed = self._routed, {}
        behind: list[_Client] = []
        for account_id, events in routed.items():
            clients = self._clients.get(account_id)
            if clients:
                self._flush_account(events, clients, behind)
        for client in behind:
            self._fell_behind(client)
        # The next waits at least as long as this one took: under load, at most half of the loop's
        # time goes to writing, and the rest (the requests that make the events) keeps moving.
        ended = loop.time()
        self._next_flush = ended + max(self.flush_interval, ended - started)

    def _flush_account(self, events: list[_Routed], clients: set[_Client], behind: list[_Client]) -> None:
        # Sockets that get the same events get the same bytes: keyed by the first event's index (an
        # admin or an event everyone sees: the rest follow) or by the tuple of indexes it may see.
        everyone = all(members is None for _, _, members in events)
        joined: dict[int | tuple[int, ...], tuple[bytes, int]] = {}
        for client in clients:
            last = client.last
            if client.pending is not None:  # still replaying the log: keep them for after
                for event, _, members in events:
                    if event.id > last and (client.admin or members is None or client.user_id in members):
                        if len(client.pending) >= MAX_REPLAY_BACKLOG:
                            behind.append(client)
                            break
                        client.pending.append(event)
                continue
            key: int | tuple[int, ...]
            if client.admin or everyone:
                key = 0
                while key < len(events) and events[key][0].id <= last:
                    key += 1  # already sent from the log
                if key == len(events):
                    continue
            else:
                key = tuple(
                    i
                    for i, (event, _, members) in enumerate(events)
                    if event.id > last and (members is None or client.user_id in members)
                )
                if not key:
                    continue
            chunk = joined.get(key)
            if chunk is None:
                chosen = events[key:] if isinstance(key, int) else [events[i] for i in key]
                chunk = joined[key] = (b"".join(frame for _, frame, _ in chosen), chosen[-1][0].id)
            if write_frame(client.ws, client.transport, chunk[0]):
                client.last = chunk[1]
            elif not client.ws.closed:
                behind.append(client)

    def _write(self, client: _Client, frame: bytes, event_id: int) -> None:
        if write_frame(client.ws, client.transport, frame):
            client.last = event_id
        elif not client.ws.closed:
            self._fell_behind(client)

    def _fell_behind(self, client: _Client) -> None:
        self.remove(client)
        close_fell_behind(self.background, client.ws)

    def go_live(self, client: _Client) -> None:
        """The log replay is done: send what arrived meanwhile, then write live events as they come."""
        pending, client.pending = client.pending or deque(), None
        frames = [event for event in pending if event.id > client.last]
        if frames:
            data = b"".join(text_frame(event.json.encode()) for event in frames)
            self._write(client, data, frames[-1].id)

    def give_up(self) -> None:
        for clients in list(self._clients.values()):
            for client in list(clients):
                self._fell_behind(client)


STREAM_HUB = web.AppKey("stream_hub", StreamHub)


def add_routes(app: web.Application, prefix: str) -> None:
    """The stream route and its hub (one per app, listening to the container's bus while it runs)."""
    c = app[CONTAINER]
    hub = StreamHub(c.db, c.bus)
    app[STREAM_HUB] = hub

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        hub.start()
        yield
        await hub.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get(f"{prefix}/stream", stream)


async def stream(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    c = container_of(request)
    hub = request.app[STREAM_HUB]
    raw_after = request.query.get("after")
    try:
        after = int(raw_after) if raw_after is not None else None
    except ValueError:
        raise ApiError(
            400, "bad_after", f"after must be an event id (an integer), not {raw_after!r}"
        ) from None
    if after is not None and after < 0:
        raise ApiError(400, "bad_after", "after must not be negative")

    # No per-message deflate: the hub writes one pre-built plain frame to every client.
    ws = web.WebSocketResponse(heartbeat=25, compress=False)
    await ws.prepare(request)
    # Registered before the log is read, so nothing committed in between is missed; live events wait
    # in ``pending`` until the replay is done.
    client = _Client(ws, request, user, after if after is not None else c.bus.last_id)
    hub.add(client)
    c.metrics.websocket_clients.inc()
    try:
        while True:  # the log first, in pages
            batch = await c.bus.backlog(user.account_id, client.last, 1000)
            for event in batch:
                if ws.closed:  # fell behind while replaying: it resumes later
                    break
                if await hub.visible(client, event):
                    await ws.send_str(event.json)
                client.last = event.id
            if len(batch) < 1000 or ws.closed:
                break
        if ws.closed:
            return ws  # fell behind during the replay (``finally`` cleans up)
        await ws.send_str(json.dumps({"type": "stream.ready", "after": client.last}))
        hub.go_live(client)
        async for message in ws:
            if message.type == WSMsgType.TEXT and message.data == "ping":
                hub.flush()  # events routed before the pong go out before it
                position = client.last if client.pending is not None else max(client.last, hub.position)
                await ws.send_str(json.dumps({"type": "pong", "after": position}))
            elif message.type == WSMsgType.ERROR:
                break
    except ConnectionResetError:
        pass  # the client went away during the replay
    finally:
        c.metrics.websocket_clients.dec()
        hub.remove(client)
        if not ws.closed:
            await ws.close(code=WSCloseCode.GOING_AWAY)
    return ws
