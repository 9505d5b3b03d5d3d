"""The WhatsApp Cloud API adapter: webhook receiver (handshake, signature, parsing) and sender.

It is a real Graph API client: in the demo its ``base_url`` points at the simulator, in production at
``https://graph.facebook.com``. One ``aiohttp.ClientSession`` per adapter, opened in ``start``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import aiohttp
from aiohttp import web
from pydantic import ValidationError

from channels.base import UnavailableChannel
from channels.whatsapp import signature
from channels.whatsapp.client import GraphClient
from channels.whatsapp.config import WhatsAppConfig
from channels.whatsapp.parse import InboundItem, parse_envelope
from channels.whatsapp.payloads import message_body, read_receipt
from channels.whatsapp.templates import WhatsAppTemplate
from inbox.model import (
    Attachment,
    ChannelAdapter,
    ChannelInfo,
    ChannelKind,
    InboundMessage,
    InboundSink,
    InvalidWebhook,
    MessageStatus,
    OutboundMessage,
    PermanentChannelError,
    Reason,
    SendResult,
    StatusSink,
    TransientChannelError,
)

_LOGGER = logging.getLogger(__name__)


class MediaStore(Protocol):
    async def put(self, data: bytes) -> str: ...

    async def get(self, key: str) -> bytes: ...


class Deps(Protocol):
    """The part of the gateway's ``AdapterDeps`` this adapter uses."""

    @property
    def media(self) -> MediaStore: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...


class WhatsAppAdapter:
    kind = ChannelKind.WHATSAPP

    def __init__(self, channel_id: int, config: WhatsAppConfig, media: MediaStore) -> None:
        self.channel_id = channel_id
        self.config = config
        self._media = media
        self._session: aiohttp.ClientSession | None = None
        self._sink: InboundSink | None = None
        self._statuses: StatusSink | None = None

    async def start(self, sink: InboundSink, statuses: StatusSink) -> None:
        self._sink, self._statuses = sink, statuses
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds),
            headers={"User-Agent": "switchboard-whatsapp/0.1"},
        )

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None
        self._sink = self._statuses = None

    @property
    def _client(self) -> GraphClient:
        if self._session is None:
            raise TransientChannelError("whatsapp adapter is not started")
        return GraphClient(self.config, self._session)

    # -- sending ------------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send text, a template, an image with caption or reply buttons; limits checked first."""
        message_body(message)  # validates limits and the recipient before any upload or request
        media: dict[str, str] | None = None
        if message.template is None and message.attachments:
            media = await self._outgoing_media(message)
        answer = await self._client.post_message(message_body(message, media))
        messages = answer.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        wamid = first.get("id") if isinstance(first, dict) else None
        if not isinstance(wamid, str) or not wamid:
            # Accepted or not, we cannot track it; a retry could double-send, so fail loudly.
            raise PermanentChannelError(Reason.CHANNEL_ERROR, "WhatsApp answered without a message id")
        return SendResult(provider_message_id=wamid, status=MessageStatus.SENT)

    async def _outgoing_media(self, message: OutboundMessage) -> dict[str, str]:
        attachment = message.attachments[0]
        if attachment.media_key:
            data = await self._media.get(attachment.media_key)
            name = attachment.filename or "file"
            return {"id": await self._client.upload_media(data, attachment.content_type, name)}
        if attachment.url:
            return {"link": attachment.url}
        raise PermanentChannelError(Reason.CHANNEL_ERROR, "attachment has neither stored media nor a URL")

    async def mark_read(self, wamid: str) -> None:
        """Tell WhatsApp the business read a contact's message (the contact sees blue ticks)."""
        await self._client.post_message(read_receipt(wamid))

    async def templates(self) -> list[WhatsAppTemplate]:
        """The account's message templates with their status (for a template picker)."""
        if not self.config.waba_id:
            raise PermanentChannelError(Reason.CHANNEL_ERROR, "the channel has no waba_id configured")
        answer = await self._client.get(f"{self.config.waba_id}/message_templates")
        return [WhatsAppTemplate.from_graph(t) for t in answer.get("data") or [] if isinstance(t, dict)]

    # -- receiving ----------------------------------------------------------------------------------

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        """``GET``: Meta's verify handshake. ``POST``: signed notifications, stored before the 200."""
        if request.method == "GET":
            return self._handshake(request)
        if request.method != "POST":
            return web.Response(status=405, text="method not allowed")
        body = await request.read()
        # The signature covers the raw bytes: check it before parsing anything.
        if not signature.verify(self.config.app_secret, body, request.headers.get(signature.HEADER)):
            _LOGGER.warning("whatsapp channel %s: webhook with a bad or missing signature", self.channel_id)
            return web.Response(status=401, text="bad signature")
        try:
            payload = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="not a webhook payload: the body is not JSON")
        try:
            parsed = parse_envelope(self.channel_id, payload, self.config.phone_number_id)
        except InvalidWebhook as exc:
            return web.Response(status=400, text=f"not a webhook payload: {exc}")
        assert self._sink is not None and self._statuses is not None, "adapter not started"
        try:
            for item in parsed.messages:
                message = await self._with_media(item)
                try:
                    await self._sink(message)
                except ValueError as exc:
                    # The core refused the message itself (e.g. a sender that is no phone number): a
                    # redelivery would fail the same way, so acknowledge it rather than block the rest.
                    _LOGGER.error(
                        "whatsapp channel %s: message %s refused: %s",
                        self.channel_id,
                        message.provider_message_id,
                        exc,
                    )
            for update in parsed.statuses:
                await self._statuses(update)
        except TransientChannelError as exc:
            # Media could not be fetched just now: a non-200 makes WhatsApp deliver again, and
            # whatever this attempt stored is de-duplicated then.
            _LOGGER.warning("whatsapp channel %s: webhook not processed: %s", self.channel_id, exc.detail)
            return web.Response(status=503, text="try again")
        return web.Response(text="ok")

    def _handshake(self, request: web.Request) -> web.Response:
        # protocols.md §1: mode "subscribe" and our token → 200 with the challenge; otherwise 401 (as
        # Meta's own Node SDK answers).
        mode = request.query.get("hub.mode", "")
        token = request.query.get("hub.verify_token", "")
        challenge = request.query.get("hub.challenge", "")
        if mode == "subscribe" and hmac.compare_digest(token.encode(), self.config.verify_token.encode()):
            return web.Response(text=challenge, content_type="text/plain")
        return web.Response(status=401, text="verification failed")

    async def _with_media(self, item: InboundItem) -> InboundMessage:
        if item.media is None:
            return item.message
        ref = item.media
        attachment = Attachment(content_type=ref.mime_type, filename=ref.filename)
        try:
            info = await self._client.media_info(ref.media_id)
            url = info.get("url")
            if not isinstance(url, str):
                raise PermanentChannelError(Reason.CHANNEL_ERROR, "media info without a url")
            data = await self._client.download(url)
            key = await self._media.put(data)
            attachment = Attachment(
                content_type=str(info.get("mime_type") or ref.mime_type),
                filename=ref.filename,
                size=len(data),
                media_key=key,
            )
        except PermanentChannelError as exc:
            # Gone or refused for good: keep the message (never drop it) without the file.
            _LOGGER.warning(
                "whatsapp channel %s: media %s not fetched: %s", self.channel_id, ref.media_id, exc
            )
        return item.message.model_copy(update={"attachments": (attachment,)})


def create_adapter(info: ChannelInfo, deps: Deps) -> ChannelAdapter:
    """Factory for ``gateway.adapters``: validates the channel config (no I/O). A channel with a
    broken config still exists; its sends fail with the reason and its webhooks are refused."""
    try:
        config = WhatsAppConfig.model_validate(dict(info.config))
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        return UnavailableChannel(ChannelKind.WHATSAPP, f"whatsapp channel config is invalid: {fields}")
    return WhatsAppAdapter(info.id, config, deps.media)
