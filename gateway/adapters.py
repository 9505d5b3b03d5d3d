"""The live adapter for each channel row, built on first use from the channel's kind and config."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from channels.base import LoopbackChannel, UnavailableChannel
from channels.email.adapter import EmailChannel
from channels.telegram import telegram_channel
from channels.webchat.adapter import create as create_webchat
from channels.whatsapp import create_adapter as whatsapp_adapter
from gateway.leases import Exclusive, Leases, Poller
from inbox import tables as t
from inbox.db import Database
from inbox.media import MediaStore
from inbox.model import ChannelAdapter, ChannelInfo, ChannelKind, InboundSink, OutboundMessage, StatusSink

_LOGGER = logging.getLogger(__name__)


class DbStateStore:
    """``StateStore`` for one channel on the ``settings`` table (key ``channel:<id>:<key>``)."""

    def __init__(self, db: Database, channel_id: int) -> None:
        self._db = db
        self._prefix = f"channel:{channel_id}:"

    async def get(self, key: str) -> dict[str, Any] | None:
        async with self._db.read() as session:
            row = await session.get(t.Setting, self._prefix + key)
            return dict(row.value) if row is not None else None

    async def set(self, key: str, value: dict[str, Any]) -> None:
        async with self._db.write() as session:
            row = await session.get(t.Setting, self._prefix + key)
            if row is None:
                session.add(t.Setting(key=self._prefix + key, value=value))
            else:
                row.value = value


@dataclass(frozen=True)
class AdapterDeps:
    """What a channel factory may hand its adapter besides the channel's own config."""

    state: DbStateStore
    media: MediaStore
    public_url: str
    clock: Callable[[], datetime]
    mail_domain: str = "switchboard.localhost"  # for Message-IDs of outgoing mail
    smtp_url: str | None = None  # the gateway's default outbound relay
    # A reply a live channel could not hand to anyone (the chat visitor left): the gateway emails it.
    undelivered: Callable[[OutboundMessage], Coroutine[Any, Any, None]] | None = None


AdapterFactory = Callable[[ChannelInfo, AdapterDeps], ChannelAdapter]


class UnknownChannelError(LookupError):
    pass


def channel_info(row: t.Channel) -> ChannelInfo:
    return ChannelInfo(
        id=row.id,
        account_id=row.account_id,
        inbox_id=row.inbox_id,
        kind=ChannelKind(row.kind),
        name=row.name,
        config=dict(row.config or {}),
    )


class AdapterRegistry:
    def __init__(
        self,
        db: Database,
        factories: dict[ChannelKind, AdapterFactory],
        media: MediaStore,
        public_url: str,
        clock: Callable[[], datetime],
        *,
        mail_domain: str = "switchboard.localhost",
        smtp_url: str | None = None,
    ) -> None:
        self._mail_domain, self._smtp_url = mail_domain, smtp_url
        self._db = db
        self._factories = factories
        self._media = media
        self._public_url = public_url
        self._clock = clock
        self._adapters: dict[int, ChannelAdapter] = {}
        self._lock = asyncio.Lock()
        self._sink: InboundSink | None = None
        self._statuses: StatusSink | None = None
        # Set in gateway processes: an adapter's ``poll_forever`` then runs under a cluster lease.
        self.leases: Leases | None = None
        self.undelivered: Callable[[OutboundMessage], Coroutine[Any, Any, None]] | None = None
        self._pollers: dict[int, Exclusive] = {}

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
            adapter = self._build(channel_info(channel))
            assert self._sink is not None and self._statuses is not None, "registry not bound"
            await adapter.start(self._sink, self._statuses)
            self._adapters[channel_id] = adapter
            # An adapter whose channel has nothing to poll (a webhook bot, mail by SMTP only) says so
            # with ``polling = False`` and holds no lease.
            if self.leases is not None and isinstance(adapter, Poller) and getattr(adapter, "polling", True):
                self._pollers[channel_id] = self.leases.run_exclusive(
                    f"poller:{channel_id}", adapter.poll_forever
                )
            return adapter

    def _build(self, info: ChannelInfo) -> ChannelAdapter:
        factory = self._factories.get(info.kind)
        if factory is None:
            return UnavailableChannel(info.kind, f"no adapter for {info.kind} channels is installed")
        deps = AdapterDeps(
            DbStateStore(self._db, info.id),
            self._media,
            self._public_url,
            self._clock,
            mail_domain=self._mail_domain,
            smtp_url=self._smtp_url,
            undelivered=self.undelivered,
        )
        return factory(info, deps)

    async def start_all(self) -> None:
        async with self._db.read() as session:
            ids = list(await session.scalars(select(t.Channel.id)))
        for channel_id in ids:
            try:
                await self.get(channel_id)
            except Exception:  # one broken channel must not keep the others down
                _LOGGER.exception("channel %s failed to start", channel_id)

    async def stop_all(self) -> None:
        for poller in self._pollers.values():
            await poller.stop()
        self._pollers.clear()
        for channel_id, adapter in list(self._adapters.items()):
            try:
                await adapter.stop()
            except Exception:
                _LOGGER.exception("channel %s failed to stop", channel_id)
        self._adapters.clear()


def default_factories() -> dict[ChannelKind, AdapterFactory]:
    """Adapters by kind. Each channel package adds its factory here."""
    return {
        ChannelKind.LOOPBACK: lambda info, deps: LoopbackChannel(info.id, info.config),
        ChannelKind.EMAIL: email_channel,
        ChannelKind.TELEGRAM: telegram_channel,
        ChannelKind.WEBCHAT: create_webchat,
        ChannelKind.WHATSAPP: whatsapp_adapter,
    }


def email_channel(info: ChannelInfo, deps: AdapterDeps) -> ChannelAdapter:
    return EmailChannel(
        info,
        state=deps.state,
        media=deps.media,
        mail_domain=deps.mail_domain,
        default_relay=deps.smtp_url,
        clock=deps.clock,
    )
