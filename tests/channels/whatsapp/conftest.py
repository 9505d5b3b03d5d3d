"""A gateway with the WhatsApp simulator mounted (as ``serve --demo`` runs it), on a known port so the
demo's WhatsApp channel (base URL ``{public}/simulator/graph``) and the simulator's webhooks meet."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import web
from sqlalchemy import select

from channels.whatsapp import WhatsAppAdapter
from channels.whatsapp.signature import HEADER, sign
from channels.whatsapp.simulator import Business, Simulator
from channels.whatsapp.simulator.delivery import Delivery
from gateway.app import make_app
from gateway.config import Settings
from gateway.container import build
from gateway.demo import seed_demo
from gateway.simulator import SIMULATOR
from inbox import tables as t
from inbox.model import ChannelKind
from tests.harness import Gateway
from tests.services import free_port

FAST_RETRIES = (0.01, 0.02, 0.04)


@dataclass
class WhatsAppWorld:
    gw: Gateway
    sim: Simulator
    business: Business
    channel_id: int
    public_url: str

    @property
    def webhook_url(self) -> str:
        return f"{self.public_url}/webhooks/whatsapp/{self.channel_id}"

    async def adapter(self) -> WhatsAppAdapter:
        adapter = await self.gw.container.adapters.get(self.channel_id)
        assert isinstance(adapter, WhatsAppAdapter)
        return adapter

    async def contact_writes(
        self, number: str, kind: str = "text", content: dict | None = None, name: str | None = None, **kw
    ) -> tuple[Any, Delivery]:
        """A contact sends from their phone; returns once the gateway acknowledged the webhook."""
        wa_id = number.lstrip("+")
        message, delivery = await self.sim.contact_sends(
            self.business.phone_number_id, wa_id, kind, content or {"body": "hello"}, name=name, **kw
        )
        await asyncio.wait_for(delivery.done.wait(), 10)
        assert delivery.acknowledged, delivery.attempts
        return message, delivery

    async def conversation_of(self, wamid: str) -> tuple[int, dict]:
        """(conversation id, message) of the stored inbound message with this wamid."""
        status, page = await self.gw.api("GET", "/conversations")
        for conv in page["items"]:
            _, messages = await self.gw.api("GET", f"/conversations/{conv['id']}/messages")
            for m in messages["items"]:
                if m["provider_message_id"] == wamid:
                    return conv["id"], m
        raise AssertionError(f"no stored message {wamid}")

    async def messages(self, conversation_id: int) -> list[dict]:
        status, page = await self.gw.api("GET", f"/conversations/{conversation_id}/messages")
        assert status == 200, page
        return page["items"]

    async def post_webhook(
        self, payload: Any, *, secret: str | None = None, header: str | None = None
    ) -> int:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        signature = header if header is not None else sign(secret or self.business.app_secret, body)
        if signature:
            headers[HEADER] = signature
        async with self.gw.http.post(self.webhook_url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status

    def provider_rules_only(self) -> None:
        """Switch off the gateway's own send policies (consent, window, quota) for a test about what
        *WhatsApp* enforces: the send must reach the simulator for its rules to answer."""
        self.gw.container.outbox.policies = []

    async def settle(self) -> None:
        """Wait until every webhook the simulator queued so far was acknowledged or given up."""
        await asyncio.wait_for(asyncio.gather(*(d.done.wait() for d in list(self.sim.sender.log))), 10)

    async def until(self, check: Callable[[], bool], timeout: float = 10) -> None:
        """Wait on the simulator's change notifications until ``check()`` holds."""

        async def wait() -> None:
            while not check():
                await self.sim.wait_for_change(self.sim.version, 5)

        await asyncio.wait_for(wait(), timeout)


async def start_world(
    tmp_path: Path, clock: Callable[[], datetime] | None = None, database_url: str | None = None
) -> WhatsAppWorld:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        http_port=port,
        smtp_port=0,  # not the default 2525: a running `make run` or another test run may hold it
        public_url=public,
        simulator=True,
    )
    container = build(settings, clock=clock or (lambda: datetime.now(UTC)))
    app = make_app(container)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    token = await seed_demo(container)
    container.outbox._backoff = lambda attempt, hint: 0.01  # no real waiting between tries
    gw = Gateway(container, runner, public, aiohttp.ClientSession(), token, container.clock)
    sim = app[SIMULATOR]
    sim.sender.retry_delays = FAST_RETRIES
    [business] = await sim.directory.businesses()
    async with container.db.read() as session:
        channel_id = await session.scalar(select(t.Channel.id).where(t.Channel.kind == ChannelKind.WHATSAPP))
    assert channel_id is not None
    return WhatsAppWorld(gw, sim, business, channel_id, public)


@pytest_asyncio.fixture
async def make_world(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[WhatsAppWorld]]]:
    worlds: list[WhatsAppWorld] = []

    async def make(
        clock: Callable[[], datetime] | None = None, database_url: str | None = None
    ) -> WhatsAppWorld:
        world = await start_world(tmp_path, clock, database_url)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        await world.gw.close()


@pytest_asyncio.fixture
async def world(make_world) -> WhatsAppWorld:
    return await make_world()
