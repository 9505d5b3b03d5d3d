"""The widget fan-out: routes the event log to the open widget tabs of this process.

One bus listener per process (not one subscription and task per tab) and an index of open tabs by
channel and visitor. Each event reaches only the tabs of the visitor whose conversation it concerns;
events of channels with no open tab are dropped without a look at the database. Which visitor a
conversation belongs to is read once per conversation per process (and learnt for free when a visitor
connects or writes), not once per tab. Agent presence is read once per channel per change.

The log path is what brings a reply sent by a worker in another process, a read marker set there or
another tab's message to this process's tabs (with Redis, ``RedisPokes`` wakes the bus on every
process); replies sent in this process also arrive straight from the adapter, and each tab sends a
message id once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web
from sqlalchemy import select

from channels.webchat.adapter import WebchatAdapter
from channels.webchat.identity import Visitor
from gateway.api.context import CONTAINER
from gateway.container import Container
from gateway.fanout import OrderedListener, close_fell_behind, text_frame
from gateway.webchat import store
from gateway.webchat.sockets import HEARTBEAT_SWEEP, Chat, VisitorSocket
from inbox import tables as t
from inbox.events import LiveEvent

_LOGGER = logging.getLogger(__name__)
MAX_THREADS = 200_000  # conversation -> visitor entries kept (each a few dozen bytes)


def widget_frame(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a visitor's tab is told of an event of their conversation (None: nothing)."""
    kind, data = body["type"], body.get("data") or {}
    message = data.get("message") or {}
    if kind == "message.created" and message.get("kind") == "incoming":
        return {"type": "message", "id": message["id"]}  # another tab's message
    if (
        kind == "message.updated"
        and message.get("kind") == "outgoing"
        and message.get("status") in ("sent", "delivered", "read")
    ):
        return {"type": "message", "id": message["id"]}  # a reply, once it went out
    if kind == "conversation.read":
        return {"type": "read", "up_to": data.get("up_to", 0)}
    if kind == "conversation.typing" and data.get("who") == "agent":
        return {"type": "typing", "typing": bool(data.get("typing")), "name": data.get("name")}
    return None


def _channel_of(body: Mapping[str, Any]) -> int | None:
    data = body.get("data") or {}
    channel_id = (data.get("message") or {}).get("channel_id") or data.get("channel_id")
    return int(channel_id) if channel_id is not None else None


class WidgetHub(OrderedListener):
    """Open widget tabs by channel and visitor, and the shared ``Chat`` of each channel."""

    def __init__(self, c: Container) -> None:
        super().__init__("webchat")
        self._c = c
        self._chats: dict[int, Chat] = {}
        # channel -> visitor -> tabs; a tuple (usually of one tab) is the smallest container per socket
        self._tabs: dict[int, dict[str, tuple[VisitorSocket, ...]]] = {}
        self._threads: dict[int, tuple[int, str]] = {}  # conversation -> (channel, visitor address)
        self._heartbeat: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._c.bus.listen(self)
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="webchat-heartbeat")

    async def close(self) -> None:
        self._c.bus.unlisten(self)
        await self.stop_heartbeat()
        await super().close()

    async def stop_heartbeat(self) -> None:
        """No more timed sweeps (closing; tests run ``sweep`` by hand)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SWEEP)
            try:
                self.sweep()
            except Exception:  # the next sweep tries again; a dead timer would keep dead tabs forever
                _LOGGER.exception("webchat heartbeat sweep failed")

    def sweep(self) -> None:
        """One heartbeat sweep over every open tab (``VisitorSocket.beat``)."""
        for visitors in list(self._tabs.values()):
            for tabs in list(visitors.values()):
                for tab in tabs:
                    tab.beat()

    def chat(self, channel: t.Channel, adapter: WebchatAdapter) -> Chat:
        """The channel's shared ``Chat`` (rebuilt if its adapter changed; the row kept fresh)."""
        chat = self._chats.get(channel.id)
        if chat is None or chat.adapter is not adapter:
            chat = self._chats[channel.id] = Chat(self._c, channel, adapter, self.remember)
        else:
            chat.channel = channel
        return chat

    def socket(
        self, ws: web.WebSocketResponse, request: web.Request, chat: Chat, visitor: Visitor
    ) -> VisitorSocket:
        return VisitorSocket(ws, request, chat, visitor, self.background)

    # -- the index ------------------------------------------------------------------------------------

    def add(self, tab: VisitorSocket) -> None:
        visitors = self._tabs.setdefault(tab.channel_id, {})
        tabs = visitors.get(tab.address, ())
        if tab not in tabs:
            visitors[tab.address] = (*tabs, tab)

    def remove(self, tab: VisitorSocket) -> None:
        visitors = self._tabs.get(tab.channel_id)
        if visitors is None:
            return
        tabs = visitors.get(tab.address)
        if tabs is not None and tab in tabs:
            rest = tuple(other for other in tabs if other is not tab)
            if rest:
                visitors[tab.address] = rest
            else:
                del visitors[tab.address]
                if not visitors:
                    del self._tabs[tab.channel_id]

    def tabs_of(self, channel_id: int, address: str) -> tuple[VisitorSocket, ...]:
        return self._tabs.get(channel_id, {}).get(address, ())

    def remember(self, conversation_id: int, channel_id: int, address: str) -> None:
        """Conversation ``conversation_id`` is this visitor's (it never changes hands)."""
        if conversation_id in self._threads:
            return
        if len(self._threads) >= MAX_THREADS:
            del self._threads[next(iter(self._threads))]  # the oldest learnt
        self._threads[conversation_id] = (channel_id, address)

    # -- routing --------------------------------------------------------------------------------------

    def handle_now(self, event: LiveEvent) -> bool:
        if event.type == "user.profile":
            self._forget_agent(event)
            return True
        if not self._tabs:
            return True
        if event.type == "user.presence":
            return not self._channels_of_account(event.account_id)
        frame = widget_frame(event.body)
        conversation_id = event.body.get("conversation_id")
        if frame is None or conversation_id is None:
            return True
        channel_id = _channel_of(event.body)
        if channel_id is not None and channel_id not in self._tabs:
            return True  # no open tab on that channel: nobody to tell
        thread = self._threads.get(int(conversation_id))
        if thread is None:
            return False  # whose is it? (handle reads it)
        self._send(thread, frame)
        return True

    async def handle(self, event: LiveEvent) -> None:
        if event.type == "user.presence":
            for channel_id in self._channels_of_account(event.account_id):
                chat = self._chats[channel_id]
                async with self._c.db.read() as session:
                    presence = await store.presence(
                        session, chat.channel, chat.adapter.config, self._c.clock()
                    )
                said = {"type": "presence", "presence": presence}
                encoded = text_frame(json.dumps(said).encode())  # once for every tab of the channel
                for tabs in list(self._tabs.get(channel_id, {}).values()):
                    for tab in tabs:
                        tab.offer(said, encoded)
            return
        frame = widget_frame(event.body)
        conversation_id = event.body.get("conversation_id")
        if frame is None or conversation_id is None:
            return
        thread = self._threads.get(int(conversation_id))
        if thread is None:
            async with self._c.db.read() as session:
                row = (
                    await session.execute(
                        select(t.Conversation.channel_id, t.Conversation.thread_key).where(
                            t.Conversation.id == int(conversation_id)
                        )
                    )
                ).one_or_none()
            if row is None:
                return
            self.remember(int(conversation_id), row.channel_id, row.thread_key)
            thread = (row.channel_id, row.thread_key)
        self._send(thread, frame)

    def _forget_agent(self, event: LiveEvent) -> None:
        user_id = (event.body.get("data") or {}).get("user_id")
        if user_id is None:
            return
        for chat in self._chats.values():
            if chat.channel.account_id == event.account_id:
                chat.renderer.forget(int(user_id))

    def _channels_of_account(self, account_id: int) -> list[int]:
        return [
            channel_id
            for channel_id in self._tabs
            if channel_id in self._chats and self._chats[channel_id].channel.account_id == account_id
        ]

    def _send(self, thread: tuple[int, str], frame: dict[str, Any]) -> None:
        channel_id, address = thread
        for tab in self.tabs_of(channel_id, address):
            tab.offer(frame)

    def give_up(self) -> None:
        for visitors in list(self._tabs.values()):
            for tabs in list(visitors.values()):
                for tab in tabs:
                    close_fell_behind(self.background, tab.ws)


WIDGET_HUB = web.AppKey("widget_hub", WidgetHub)


def install(app: web.Application) -> None:
    """One hub per app, listening to the container's bus while the app runs."""
    hub = WidgetHub(app[CONTAINER])
    app[WIDGET_HUB] = hub

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        hub.start()
        yield
        await hub.close()

    app.cleanup_ctx.append(lifecycle)
