"""A widget tab's live socket, kept as small as an idle socket can be.

An open tab costs aiohttp's request handler and this object: no task, queue or bus subscription of
its own. Frames are written straight to the socket when nothing is waiting; a frame that needs a
database read first (a reply to render with its agent's name) and whatever arrives behind it wait in a
small queue worked by a task that exists only while the queue has something. Events from the log reach
the tab through the process's one ``WidgetHub`` (gateway/webchat/hub.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from channels.webchat.adapter import WebchatAdapter
from channels.webchat.identity import Visitor
from gateway.container import Container
from gateway.fanout import Background, close_fell_behind, text_frame, write_frame
from gateway.webchat import store
from inbox import tables as t

_LOGGER = logging.getLogger(__name__)
MAX_QUEUED = 1000  # frames a tab may have waiting before it counts as gone and is closed (4000)
# The heartbeat: the hub sweeps every tab every HEARTBEAT_SWEEP s; a tab quiet for PING_AFTER_SWEEPS
# sweeps (25 s) is pinged and must answer before the next sweep (12.5 s), as aiohttp's heartbeat=25 did.
HEARTBEAT_SWEEP = 12.5
PING_AFTER_SWEEPS = 2
PING_FRAME = b"\x89\x00"  # an empty unmasked ping, server to client (RFC 6455 §5.5.2)


class Chat:
    """The channel, its adapter and the container: one per channel, shared by its requests and tabs."""

    def __init__(
        self,
        c: Container,
        channel: t.Channel,
        adapter: WebchatAdapter,
        remember: Callable[[int, int, str], None] = lambda conversation_id, channel_id, address: None,
    ) -> None:
        self.c = c
        self.channel = channel
        self.adapter = adapter
        # The hub learns whose a conversation is (conversation id, channel id, visitor address).
        self.remember = remember
        self.token = adapter.config.token
        self.renderer = store.Renderer(self.token, adapter.signing_secret, adapter.reply_id)

    def cors(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response


class VisitorSocket:
    """One widget tab. Every message frame carries its id; each id is sent once per tab."""

    __slots__ = (
        "_background",
        "_pinged",
        "_queue",
        "_quiet",
        "_seen",
        "_started",
        "_writer",
        "chat",
        "last_typing",
        "transport",
        "typing",
        "visitor",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        chat: Chat,
        visitor: Visitor,
        background: Background,
    ) -> None:
        self.ws = ws
        self.transport = request.transport
        self.chat = chat
        self.visitor = visitor
        self.typing = False
        self.last_typing = 0.0
        self._background = background
        self._seen: set[int] | None = None  # message ids sent to this tab
        self._queue: deque[Mapping[str, Any]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._started = False  # until the history is sent, everything waits in the queue
        self._pinged = False  # a heartbeat ping is out and nothing came back since
        self._quiet = 0  # heartbeat sweeps since the tab was last heard from

    @property
    def channel_id(self) -> int:
        return self.chat.channel.id

    @property
    def address(self) -> str:
        return self.visitor.address

    def has(self, message_id: int) -> bool:
        return self._seen is not None and message_id in self._seen

    async def deliver(self, frame: Mapping[str, Any]) -> None:
        """The adapter's ``VisitorConnection``: replies, typing, read markers, echoes."""
        self.offer(frame)

    def offer(self, frame: Mapping[str, Any], encoded: bytes | None = None) -> None:
        """Send a frame now if nothing is waiting, else queue it behind the rest. Never blocks.

        ``encoded``: the frame as ``text_frame`` bytes, when the caller sends it to many tabs."""
        if self.ws.closed:
            return
        is_message = frame.get("type") == "message"
        if is_message and self.has(int(frame["id"])):
            return
        if self._queue or not self._started or (is_message and "created_at" not in frame):
            if self._queue is None:
                self._queue = deque()
            if len(self._queue) >= MAX_QUEUED:
                # A tab that stopped reading: closing makes it reconnect and resume from the history.
                close_fell_behind(self._background, self.ws)
                return
            self._queue.append(frame)
            self._kick()
            return
        self._write_now(frame, encoded)

    def _write_now(self, frame: Mapping[str, Any], encoded: bytes | None) -> None:
        if frame.get("type") == "message":
            self._mark(int(frame["id"]))
        if encoded is None:
            encoded = text_frame(json.dumps(frame).encode())
        if not write_frame(self.ws, self.transport, encoded):
            close_fell_behind(self._background, self.ws)

    def _mark(self, message_id: int) -> None:
        if self._seen is None:
            self._seen = set()
        self._seen.add(message_id)

    def heard(self) -> None:
        """Anything came from the tab (a pong, a frame): it is alive."""
        self._pinged = False
        self._quiet = 0

    def beat(self) -> None:
        """One sweep of the hub's heartbeat (every ``HEARTBEAT_SWEEP`` s).

        The hub pings every tab from one timer instead of aiohttp's heartbeat, which keeps two timers,
        their contexts and a ping task per socket (~1 KB of each idle socket). A tab quiet for a whole
        sweep is pinged; one that has not answered by the next sweep is gone (a closed laptop, a dropped
        network) and its connection is dropped, as aiohttp's heartbeat did; the widget reconnects and
        resumes when it comes back."""
        if self.ws.closed:
            return
        if self._pinged:
            _LOGGER.debug("webchat %s: a tab did not answer the heartbeat", self.chat.channel.id)
            if self.transport is not None:
                self.transport.close()  # ends the handler's read loop, which cleans up
            return
        self._quiet += 1
        if self._quiet >= PING_AFTER_SWEEPS:
            self._pinged = True
            if not write_frame(self.ws, self.transport, PING_FRAME):
                close_fell_behind(self._background, self.ws)

    async def send_now(self, frame: Mapping[str, Any]) -> None:
        """Send and wait for the socket to take it (the history on connect)."""
        if frame.get("type") == "message":
            self._mark(int(frame["id"]))
        await self.ws.send_str(json.dumps(frame))

    def start(self) -> None:
        """The history is out: live frames may go now, starting with those that waited."""
        self._started = True
        self._kick()

    def _kick(self) -> None:
        if self._started and self._queue and self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain(), name="webchat-writer")

    async def _drain(self) -> None:
        try:
            while self._queue:
                frame = self._queue.popleft()
                if frame.get("type") == "message":
                    message_id = int(frame["id"])
                    if self.has(message_id):
                        continue
                    if "created_at" not in frame:  # straight from adapter.send: add the agent's name
                        frame = await self._render(message_id) or frame
                if self.ws.closed:
                    return
                await self.send_now(frame)
        except ConnectionResetError:
            return  # the tab went away; the handler cleans up
        finally:
            self._writer = None
            if not self._queue:
                self._queue = None

    async def _render(self, message_id: int) -> dict[str, Any] | None:
        try:
            async with self.chat.c.db.read() as session:
                m = await store.visible_message(session, message_id, self.chat.channel.id)
                if m is None:
                    return None
                return await self.chat.renderer.frame(session, m, self.visitor.address)
        except Exception:  # send what we have rather than nothing
            _LOGGER.exception("webchat %s: could not render message %s", self.chat.channel.id, message_id)
            return None

    async def stop(self) -> None:
        writer, self._writer = self._writer, None
        self._queue = None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                await writer
