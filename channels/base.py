"""The adapter contract (DESIGN.md §5) and the loopback channel the tests and the demo drive.

The protocol itself lives in ``inbox.model`` because the outbox calls it and ``inbox`` imports nothing
of ours; it is re-exported here for adapter authors.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import secrets
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web

from inbox.model import (
    ChannelAdapter,
    ChannelError,
    ChannelKind,
    DeliveryUpdate,
    InboundMessage,
    InboundSink,
    MessageStatus,
    OutboundMessage,
    PermanentChannelError,
    Reason,
    ReceiveResult,
    SendResult,
    StatusSink,
    TransientChannelError,
)

__all__ = [
    "ChannelAdapter",
    "LoopbackChannel",
    "PermanentChannelError",
    "TransientChannelError",
    "UnavailableChannel",
]


class LoopbackChannel:
    """A channel whose "provider" is this object: sends are recorded, the contact is played by calls.

    Reads like a conversation in tests: ``await loop.customer_writes("+4915...", "hi")``, then
    ``sent = await loop.next_sent()``, then ``await loop.report(sent_id, MessageStatus.DELIVERED)``.

    Across processes (several gateways and workers) a channel configured with ``relay_url`` also
    POSTs every send as JSON to that URL — the "provider" any process can reach; 2xx is accepted,
    429/5xx and connection errors are transient, other 4xx permanent — and takes customer messages
    as ``POST /webhooks/loopback/<id>`` ``{"from", "text", "id"?, "name"?}`` with the channel's
    ``webhook_secret`` in ``X-Loopback-Secret``.
    """

    kind = ChannelKind.LOOPBACK

    def __init__(self, channel_id: int, config: Mapping[str, Any] | None = None) -> None:
        self.channel_id = channel_id
        self._relay_url: str | None = (config or {}).get("relay_url")
        self._secret: str = str((config or {}).get("webhook_secret") or "")
        self._http: aiohttp.ClientSession | None = None
        self.sent: asyncio.Queue[tuple[OutboundMessage, str]] = asyncio.Queue()
        self.failures: list[ChannelError] = []  # raised by the next sends, in order
        self._sink: InboundSink | None = None
        self._statuses: StatusSink | None = None
        self._ids = itertools.count(1)

    async def start(self, sink: InboundSink, statuses: StatusSink) -> None:
        self._sink, self._statuses = sink, statuses
        if self._relay_url:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def stop(self) -> None:
        self._sink = self._statuses = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def send(self, message: OutboundMessage) -> SendResult:
        if self.failures:
            raise self.failures.pop(0)
        provider_id = f"loop-{self.channel_id}-{message.message_id}-{next(self._ids)}"
        if self._relay_url:
            await self._relay(message, provider_id)
        self.sent.put_nowait((message, provider_id))
        return SendResult(provider_message_id=provider_id)

    async def _relay(self, message: OutboundMessage, provider_id: str) -> None:
        assert self._http is not None and self._relay_url is not None, "channel not started"
        body = {
            "channel_id": self.channel_id,
            "message_id": message.message_id,
            "provider_message_id": provider_id,
            "to": message.to,
            "text": message.text,
        }
        try:
            async with self._http.post(self._relay_url, json=body) as resp:
                detail = (await resp.text())[:200]
                if resp.status == 429 or resp.status >= 500:
                    raise TransientChannelError(f"relay answered {resp.status}: {detail}")
                if resp.status >= 400:
                    raise PermanentChannelError(
                        Reason.CHANNEL_ERROR, f"relay answered {resp.status}: {detail}"
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientChannelError(f"relay unreachable: {type(exc).__name__}") from exc

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        """A customer message over HTTP; stored before the 200, so an acknowledged one is never lost."""
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        given = request.headers.get("X-Loopback-Secret", "")
        if not self._secret or not hmac.compare_digest(given.encode(), self._secret.encode()):
            return web.json_response({"error": "bad secret"}, status=401)
        try:
            data = await request.json()
            sender, text = str(data["from"]), str(data["text"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "expected JSON {from, text}"}, status=400)
        result = await self.customer_writes(
            sender,
            text,
            # Unique across processes (the default counter is per process).
            provider_id=str(data["id"]) if data.get("id") else f"in-{secrets.token_hex(12)}",
            name=str(data["name"]) if data.get("name") else None,
        )
        return web.json_response({"conversation_id": result.conversation_id})

    async def next_sent(self, timeout: float = 10) -> tuple[OutboundMessage, str]:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel on 3.11
            return await self.sent.get()

    async def customer_writes(
        self, sender: str, text: str, *, provider_id: str | None = None, name: str | None = None
    ) -> ReceiveResult:
        assert self._sink is not None, "channel not started"
        return await self._sink(
            InboundMessage(
                channel_id=self.channel_id,
                provider_message_id=provider_id or f"in-{self.channel_id}-{next(self._ids)}",
                sender=sender,
                sender_name=name,
                text=text,
                raw={"loopback": True, "text": text},
            )
        )

    async def report(self, provider_id: str, status: MessageStatus) -> bool:
        assert self._statuses is not None, "channel not started"
        return await self._statuses(
            DeliveryUpdate(channel_id=self.channel_id, provider_message_id=provider_id, status=status)
        )


class UnavailableChannel:
    """Stands for a channel kind whose adapter is not configured; every send fails with the reason."""

    def __init__(self, kind: ChannelKind, why: str) -> None:
        self.kind = kind
        self._why = why

    async def start(self, sink: InboundSink, statuses: StatusSink) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, message: OutboundMessage) -> SendResult:
        raise PermanentChannelError(Reason.CHANNEL_ERROR, self._why)
