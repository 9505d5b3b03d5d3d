"""The adapter contract (DESIGN.md §5) and the loopback channel the tests and the demo drive.

The protocol itself lives in ``inbox.model`` because the outbox calls it and ``inbox`` imports nothing
of ours; it is re-exported here for adapter authors.
"""

from __future__ import annotations

import asyncio
import itertools

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
    """

    kind = ChannelKind.LOOPBACK

    def __init__(self, channel_id: int) -> None:
        self.channel_id = channel_id
        self.sent: asyncio.Queue[tuple[OutboundMessage, str]] = asyncio.Queue()
        self.failures: list[ChannelError] = []  # raised by the next sends, in order
        self._sink: InboundSink | None = None
        self._statuses: StatusSink | None = None
        self._ids = itertools.count(1)

    async def start(self, sink: InboundSink, statuses: StatusSink) -> None:
        self._sink, self._statuses = sink, statuses

    async def stop(self) -> None:
        self._sink = self._statuses = None

    async def send(self, message: OutboundMessage) -> SendResult:
        if self.failures:
            raise self.failures.pop(0)
        provider_id = f"loop-{self.channel_id}-{message.message_id}-{next(self._ids)}"
        self.sent.put_nowait((message, provider_id))
        return SendResult(provider_message_id=provider_id)

    async def next_sent(self, timeout: float = 10) -> tuple[OutboundMessage, str]:  # noqa: ASYNC109
        return await asyncio.wait_for(self.sent.get(), timeout)

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
