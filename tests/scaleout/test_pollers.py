"""A polling adapter's loop runs in one gateway of the cluster at a time, and moves when that one stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from channels.base import LoopbackChannel
from gateway.adapters import AdapterDeps
from gateway.config import Settings
from gateway.container import Container, build
from gateway.demo import seed_demo
from inbox.model import ChannelInfo, ChannelKind


class PollingLoopback(LoopbackChannel):
    """A loopback channel with a poll loop, standing in for IMAP or Telegram long polling."""

    def __init__(self, channel_id: int, where: str, polling: dict[str, asyncio.Event]) -> None:
        super().__init__(channel_id)
        self._where = where
        self._polling = polling

    async def poll_forever(self) -> None:
        self._polling[self._where].set()
        try:
            await asyncio.Event().wait()
        finally:
            self._polling[self._where].clear()


def gateway(tmp_path: Path, redis_db: str, where: str, polling: dict[str, asyncio.Event]) -> Container:
    def factory(info: ChannelInfo, deps: AdapterDeps) -> PollingLoopback:
        return PollingLoopback(info.id, where, polling)

    settings = Settings(data_dir=tmp_path, redis_url=redis_db, poller_lease_seconds=0.6, smtp_port=0)
    return build(settings, factories={ChannelKind.LOOPBACK: factory})


async def test_poller_runs_once_across_gateways_and_moves_on_stop(tmp_path: Path, redis_db: str):
    polling = {"a": asyncio.Event(), "b": asyncio.Event()}
    a = gateway(tmp_path, redis_db, "a", polling)
    b = gateway(tmp_path, redis_db, "b", polling)
    await a.start()
    try:
        await seed_demo(a)  # creates the loopback channel; gateway a starts its adapter and poller
        await asyncio.wait_for(polling["a"].wait(), 10)
        await b.start()  # b starts the same channel; its poller waits for the lease
        assert isinstance(await b.adapters.get(1), PollingLoopback)
        with pytest.raises(TimeoutError):  # while a holds the lease b never polls (3 lease lifetimes)
            await asyncio.wait_for(polling["b"].wait(), 2)
        assert polling["a"].is_set()

        await a.stop()  # lets go of the lease; b takes it on its next try
        assert not polling["a"].is_set()
        await asyncio.wait_for(polling["b"].wait(), 5)
    finally:
        await b.stop()
        await a.stop()
