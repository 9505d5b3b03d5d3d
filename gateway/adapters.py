"""The live adapter for each channel row, built on first use from the channel's kind and config."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import select

from channels.base import LoopbackChannel, UnavailableChannel
from inbox import tables as t
from inbox.db import Database
from inbox.model import ChannelAdapter, ChannelKind, InboundSink, StatusSink

_LOGGER = logging.getLogger(__name__)

AdapterFactory = Callable[[t.Channel], ChannelAdapter]


class UnknownChannelError(LookupError):
    pass


class AdapterRegistry:
    def __init__(self, db: Database, factories: dict[ChannelKind, AdapterFactory]) -> None:
        self._db = db
        self._factories = factories
        self._adapters: dict[int, ChannelAdapter] = {}
        self._lock = asyncio.Lock()
        self._sink: InboundSink | None = None
        self._statuses: StatusSink | None = None

    def bind(self, sink: InboundSink, statuses: StatusSink) -> None:
        self._sink, self._statuses = sink, statuses

    async def get(self, channel_id: int) -> ChannelAdapter:
        adapter = self._adapters.get(channel_id)
        if adapter is not None:
            return adapter
        async with self._lock:
            adapter = self._adapters.get(channel_id)
            if adapter is not None:
                return adapter
            async with self._db.read() as session:
                channel = await session.get(t.Channel, channel_id)
            if channel is None:
                raise UnknownChannelError(f"channel {channel_id} does not exist")
            adapter = self._build(channel)
            assert self._sink is not None and self._statuses is not None, "registry not bound"
            await adapter.start(self._sink, self._statuses)
            self._adapters[channel_id] = adapter
            return adapter

    def _build(self, channel: t.Channel) -> ChannelAdapter:
        kind = ChannelKind(channel.kind)
        factory = self._factories.get(kind)
        if factory is None:
            return UnavailableChannel(kind, f"no adapter for {kind} channels is installed")
        return factory(channel)

    async def start_all(self) -> None:
        async with self._db.read() as session:
            ids = list(await session.scalars(select(t.Channel.id)))
        for channel_id in ids:
            try:
                await self.get(channel_id)
            except Exception:  # one broken channel must not keep the others down
                _LOGGER.exception("channel %s failed to start", channel_id)

    async def stop_all(self) -> None:
        for channel_id, adapter in list(self._adapters.items()):
            try:
                await adapter.stop()
            except Exception:
                _LOGGER.exception("channel %s failed to stop", channel_id)
        self._adapters.clear()


def default_factories() -> dict[ChannelKind, AdapterFactory]:
    """Adapters by kind. Channel issues add theirs here."""
    return {ChannelKind.LOOPBACK: lambda channel: LoopbackChannel(channel.id)}
