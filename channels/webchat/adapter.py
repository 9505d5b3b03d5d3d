"""The webchat adapter: visitors' live sockets, their messages into the pipeline, replies out to them.

The gateway owns the HTTP side (widget, socket endpoint, uploads, history from the database) and
calls in here for everything that concerns the channel itself. ``send`` is called by the outbox only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any, NoReturn, Protocol

from channels.webchat.config import WebchatConfig
from channels.webchat.identity import IdentityError, Visitor, owns_provider_id, provider_id, visitor_of
from channels.webchat.limits import RateLimiter
from channels.webchat.media import media_url
from channels.webchat.targeting import FlowChoice, choose_flow
from channels.webchat.uploads import UploadRefused, check_upload
from inbox.model import (
    Attachment,
    ChannelInfo,
    ChannelKind,
    DeliveryUpdate,
    InboundMessage,
    InboundSink,
    MessageStatus,
    OutboundMessage,
    ReceiveResult,
    SendResult,
    StatusSink,
    TransientChannelError,
)

_LOGGER = logging.getLogger(__name__)


class Refused(Exception):
    """A visitor's request the channel will not take; ``code`` and ``message`` go back to the widget."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


class VisitorConnection(Protocol):
    """One open widget (a browser tab). The gateway implements it over a websocket."""

    async def deliver(self, frame: Mapping[str, Any]) -> None: ...


class WebchatAdapter:
    kind = ChannelKind.WEBCHAT

    def __init__(
        self,
        info: ChannelInfo,
        clock: Callable[[], datetime],
        offline: Callable[[OutboundMessage], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.info = info
        # Called with a reply no open tab received (the visitor left): the gateway emails it.
        self._offline = offline
        self._offline_tasks: set[asyncio.Task[None]] = set()
        self.config = WebchatConfig.of(info.config)
        self._clock = clock
        # Binds reply ids to their visitor; any channel secret will do, and one always exists.
        self._id_secret = self.config.identity_secret or f"{self.config.token}:{info.id}"
        limits = self.config.limits
        self._per_visitor = RateLimiter(limits.visitor_per_minute, 60, clock)
        self._per_ip = RateLimiter(limits.ip_per_minute, 60, clock)
        self._connects = RateLimiter(limits.connections_per_ip_per_minute, 60, clock)
        self._frames = RateLimiter(limits.frames_per_minute, 60, clock)
        # A tuple per visitor (usually of one): the smallest container an idle socket can cost.
        self._connections: dict[str, tuple[VisitorConnection, ...]] = {}
        self._sink: InboundSink | None = None
        self._statuses: StatusSink | None = None

    # -- the ChannelAdapter port -----------------------------------------------------------------

    async def start(self, sink: InboundSink, statuses: StatusSink) -> None:
        self._sink, self._statuses = sink, statuses

    async def stop(self) -> None:
        self._sink = self._statuses = None
        self._connections.clear()

    async def send(self, message: OutboundMessage) -> SendResult:
        """Push an agent's reply to every open tab of its visitor.

        A visitor with no tab open gets it from the history when the widget next connects, so the
        message counts as sent either way; the widget reports delivered and read itself.
        """
        if self._sink is None:
            raise TransientChannelError("webchat channel is not started")
        pid = provider_id(self._id_secret, message.message_id, message.to)
        frame = {
            "type": "message",
            "id": message.message_id,
            "provider_id": pid,
            "from": "agent",
            "text": message.text,
            "attachments": [self._visitor_attachment(a) for a in message.attachments],
            "buttons": list(message.buttons),  # quick replies (a bot's choices, a satisfaction survey)
        }
        if await self.push(message.to, frame) == 0 and self._offline is not None:
            # Not awaited: the fallback goes through the outbox, which is waiting for this send.
            task = asyncio.create_task(self._offline(message))
            self._offline_tasks.add(task)
            task.add_done_callback(self._offline_tasks.discard)
        return SendResult(provider_message_id=pid, status=MessageStatus.SENT)

    # -- visitors and their sockets ----------------------------------------------------------------

    def identify(self, *, key: str | None, identifier: str | None, signature: str | None, ip: str) -> Visitor:
        """Who is connecting; Refused (logged) for a bad identity or too many connections from an IP."""
        wait = self._connects.hit(ip)
        if wait is not None:
            self._refuse("too_many_connections", "too many connections; try again shortly", ip, None, wait)
        try:
            return visitor_of(
                key=key,
                identifier=identifier,
                signature=signature,
                secret=self.config.identity_secret,
                identity_required=self.config.identity_required,
            )
        except IdentityError as exc:
            self._refuse("identity_refused", str(exc), ip, None, cause=exc)

    def check_frame(self, visitor: Visitor, ip: str) -> None:
        """Count one frame from a visitor's socket; Refused when they send far more than a person would."""
        wait = self._frames.hit(visitor.address)
        if wait is not None:
            self._refuse("rate_limited", "too many requests; wait a moment", ip, visitor, wait)

    def attach(self, visitor: Visitor, connection: VisitorConnection) -> None:
        conns = self._connections.get(visitor.address, ())
        if connection not in conns:
            self._connections[visitor.address] = (*conns, connection)

    def detach(self, visitor: Visitor, connection: VisitorConnection) -> None:
        conns = self._connections.get(visitor.address)
        if conns is not None and connection in conns:
            rest = tuple(c for c in conns if c is not connection)
            if rest:
                self._connections[visitor.address] = rest
            else:
                del self._connections[visitor.address]

    def online(self, address: str) -> bool:
        return bool(self._connections.get(address))

    async def push(self, address: str, frame: Mapping[str, Any]) -> int:
        """Deliver a frame to every open tab of one visitor; returns how many took it."""
        delivered = 0
        for conn in self._connections.get(address, ()):
            try:
                await conn.deliver(frame)
                delivered += 1
            except Exception:  # a tab that just went away; the history covers it on reconnect
                _LOGGER.debug("webchat %s: a visitor socket failed to take a frame", self.info.id)
        return delivered

    async def broadcast(self, frame: Mapping[str, Any]) -> None:
        """A frame for every connected visitor (agent presence changed)."""
        for address in list(self._connections):
            await self.push(address, frame)

    def flow_for(self, page_url: str, first_visit: bool) -> FlowChoice:
        return choose_flow(self.config.flows, page_url, first_visit)

    @property
    def signing_secret(self) -> str:
        """Key for links and ids this channel hands to visitors (never sent to them)."""
        return self._id_secret

    def _visitor_attachment(self, attachment: Attachment) -> dict[str, Any]:
        """An attachment as the widget shows it: with a signed link to the stored file."""
        frame = attachment.model_dump(mode="json", exclude={"data"})
        frame["url"] = media_url(self.config.token, self._id_secret, frame)
        return frame

    def reply_id(self, message_id: int, address: str) -> str:
        return provider_id(self._id_secret, message_id, address)

    # -- what visitors send ------------------------------------------------------------------------

    async def receive_text(
        self,
        visitor: Visitor,
        *,
        client_id: str,
        text: str,
        ip: str,
        name: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> ReceiveResult:
        """Store a visitor's message exactly once (``client_id`` dedupes re-sends after a reconnect)."""
        text = text.strip()
        if not text:
            self._refuse("empty_message", "the message is empty", ip, visitor)
        if len(text) > self.config.limits.max_text:
            self._refuse(
                "message_too_long",
                f"messages may be at most {self.config.limits.max_text} characters",
                ip,
                visitor,
            )
        return await self._receive(visitor, client_id, ip, text=text, name=name, context=context)

    async def receive_upload(
        self,
        visitor: Visitor,
        *,
        client_id: str,
        data: bytes,
        filename: str | None,
        ip: str,
        context: Mapping[str, Any] | None = None,
    ) -> ReceiveResult:
        limits = self.config.limits
        try:
            attachment = check_upload(data, filename, limits.max_upload_bytes, limits.upload_types)
        except UploadRefused as exc:
            self._refuse(exc.code, exc.message, ip, visitor, cause=exc)
        return await self._receive(visitor, client_id, ip, attachment=attachment, context=context)

    async def acknowledge(self, visitor: Visitor, provider_ids: list[str], status: MessageStatus) -> int:
        """The widget showed (delivered) or the visitor saw (read) these replies. Returns how many moved."""
        assert self._statuses is not None, "channel not started"
        if status not in (MessageStatus.DELIVERED, MessageStatus.READ):
            return 0
        moved = 0
        for pid in provider_ids[:200]:
            if not owns_provider_id(self._id_secret, pid, visitor.address):
                continue  # not this visitor's reply: ignore quietly
            update = DeliveryUpdate(channel_id=self.info.id, provider_message_id=pid, status=status)
            if await self._statuses(update):
                moved += 1
        return moved

    async def _receive(
        self,
        visitor: Visitor,
        client_id: str,
        ip: str,
        *,
        text: str | None = None,
        name: str | None = None,
        attachment: Attachment | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> ReceiveResult:
        assert self._sink is not None, "channel not started"
        if not client_id or len(client_id) > 100 or not client_id.isascii():
            self._refuse("bad_client_id", "client_id must be 1-100 ASCII characters", ip, visitor)
        wait = self._per_visitor.hit(visitor.address) or self._per_ip.hit(ip)
        if wait is not None:
            self._refuse("rate_limited", "you are sending too fast; wait a moment", ip, visitor, wait)
        return await self._sink(
            InboundMessage(
                channel_id=self.info.id,
                # The widget's own id for the message: a re-send after a reconnect is the same message.
                provider_message_id=f"{visitor.address}/{client_id}",
                sender=visitor.address,
                sender_name=name,
                text=text,
                attachments=(attachment,) if attachment is not None else (),
                content_type=_content_type(attachment),
                received_at=self._clock(),
                raw={"webchat": {**(context or {}), "verified": visitor.verified}},
            )
        )

    def _refuse(
        self,
        code: str,
        message: str,
        ip: str,
        visitor: Visitor | None,
        retry_after: float | None = None,
        *,
        cause: Exception | None = None,
    ) -> NoReturn:
        _LOGGER.warning(
            "webchat %s: refused %s from %s (%s): %s",
            self.info.id,
            code,
            ip,
            visitor.address if visitor else "unidentified",
            message,
        )
        raise Refused(code, message, retry_after) from cause


def _content_type(attachment: Attachment | None) -> str:
    if attachment is None:
        return "text"
    return "image" if attachment.content_type.startswith("image/") else "file"


class WebchatDeps(Protocol):
    """The part of the gateway's AdapterDeps this adapter uses."""

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def undelivered(self) -> Callable[[OutboundMessage], Coroutine[Any, Any, None]] | None: ...


def create(info: ChannelInfo, deps: WebchatDeps) -> WebchatAdapter:
    """The factory gateway/adapters.py registers."""
    return WebchatAdapter(info, deps.clock, deps.undelivered)
