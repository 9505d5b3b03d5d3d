"""The live stream: ``/api/v1/stream?after=<event_id>``.

On connect the client first gets every event after ``after`` that it may see (from the log), then live
events as they commit, in id order with no gap and no repeat. Without ``after`` it starts from now.
A client that falls too far behind is closed with code 4000 and resumes with ``after=``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import WSCloseCode, WSMsgType, web

from gateway.api.context import container_of, user_of
from gateway.api.errors import ApiError
from inbox import tables as t
from inbox.access import is_admin, visible_inbox_ids
from inbox.events import LiveEvent

CLOSE_FELL_BEHIND = 4000


class _Visibility:
    """Which events this user may see. Agents' inbox sets are refreshed when an unknown inbox shows up."""

    def __init__(self, request: web.Request, user: t.User) -> None:
        self._request = request
        self._user = user
        self._inboxes: set[int] = set()
        self._admin = is_admin(user)

    async def load(self) -> None:
        async with container_of(self._request).db.read() as session:
            self._inboxes = await visible_inbox_ids(session, self._user)

    async def allows(self, event: LiveEvent) -> bool:
        if self._admin or event.inbox_id is None or event.inbox_id in self._inboxes:
            return True
        await self.load()  # membership may have changed since connect
        return event.inbox_id in self._inboxes


async def stream(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    c = container_of(request)
    raw_after = request.query.get("after")
    try:
        after = int(raw_after) if raw_after is not None else None
    except ValueError:
        raise ApiError(
            400, "bad_after", f"after must be an event id (an integer), not {raw_after!r}"
        ) from None
    if after is not None and after < 0:
        raise ApiError(400, "bad_after", "after must not be negative")

    ws = web.WebSocketResponse(heartbeat=25)
    await ws.prepare(request)
    visibility = _Visibility(request, user)
    await visibility.load()
    # Subscribe before reading the log (in pump) so nothing committed in between is missed.
    subscription = c.bus.subscribe(user.account_id)
    last = after if after is not None else c.bus.last_id

    async def pump() -> None:
        nonlocal last
        while True:  # the log first, in pages
            batch = await c.bus.backlog(user.account_id, last, 1000)
            for event in batch:
                if await visibility.allows(event):
                    await ws.send_str(event.json)
                last = event.id
            if len(batch) < 1000:
                break
        await ws.send_str(json.dumps({"type": "stream.ready", "after": last}))
        while True:
            get = asyncio.ensure_future(subscription.queue.get())
            behind = asyncio.ensure_future(subscription.overflowed.wait())
            try:
                done, _ = await asyncio.wait({get, behind}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when this task is cancelled: leave no pending waiter behind
                for waiter in (get, behind):
                    if not waiter.done():
                        waiter.cancel()
            if get not in done:
                await ws.close(code=CLOSE_FELL_BEHIND, message=b"fell behind; reconnect with after=")
                return
            event = get.result()
            if event.id <= last:  # already sent from the log
                continue
            if await visibility.allows(event):
                await ws.send_str(event.json)
            last = event.id

    sender = asyncio.create_task(pump())
    c.metrics.websocket_clients.inc()
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT and message.data == "ping":
                await ws.send_str(json.dumps({"type": "pong", "after": last}))
            elif message.type == WSMsgType.ERROR:
                break
            if sender.done():
                break
    finally:
        c.metrics.websocket_clients.dec()
        c.bus.unsubscribe(subscription)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
            await sender
        if not ws.closed:
            await ws.close(code=WSCloseCode.GOING_AWAY)
    return ws
