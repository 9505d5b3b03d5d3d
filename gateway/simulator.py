"""Mounts the WhatsApp simulator at ``/simulator`` (``settings.simulator``, set by ``serve --demo``).

The simulator finds its "businesses" in the channels table: every WhatsApp channel, with the webhook URL
the gateway serves for it. So the demo's channel (base URL ``{public}/simulator/graph``) talks to it over
real HTTP both ways, exactly as it would talk to Meta.
"""

from __future__ import annotations

import time

from aiohttp import web
from sqlalchemy import select

from channels.whatsapp.simulator import Business, Simulator, create_simulator_app
from gateway.container import Container
from inbox import tables as t
from inbox.db import Database
from inbox.model import ChannelKind

SIMULATOR = web.AppKey("simulator", Simulator)
_CACHE_SECONDS = 2.0


class ChannelDirectory:
    """``Directory`` over the WhatsApp channels (read briefly cached: the load generator is chatty)."""

    def __init__(self, db: Database, public_url: str) -> None:
        self._db = db
        self._public_url = public_url.rstrip("/")
        self._cached: tuple[float, list[Business]] | None = None

    async def businesses(self) -> list[Business]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < _CACHE_SECONDS:
            return self._cached[1]
        async with self._db.read() as session:
            rows = list(
                await session.scalars(
                    select(t.Channel).where(t.Channel.kind == ChannelKind.WHATSAPP).order_by(t.Channel.id)
                )
            )
        found = [b for b in map(self._business, rows) if b is not None]
        self._cached = (now, found)
        return found

    async def business(self, phone_number_id: str) -> Business | None:
        return next((b for b in await self.businesses() if b.phone_number_id == phone_number_id), None)

    def _business(self, row: t.Channel) -> Business | None:
        config = row.config or {}
        pnid, token, secret = (
            config.get("phone_number_id"),
            config.get("access_token"),
            config.get("app_secret"),
        )
        if not (isinstance(pnid, str) and isinstance(token, str) and isinstance(secret, str)):
            return None
        return Business(
            phone_number_id=pnid,
            display_phone_number=str(config.get("display_phone_number") or pnid),
            access_token=token,
            app_secret=secret,
            verify_token=str(config.get("verify_token") or ""),
            webhook_url=f"{self._public_url}/webhooks/whatsapp/{row.id}",
            name=row.name,
            waba_id=str(config.get("waba_id") or Business.waba_id),
        )


def mount_simulator(app: web.Application, container: Container) -> Simulator:
    simulator = Simulator(
        ChannelDirectory(container.db, container.settings.effective_public_url()), clock=container.clock
    )
    app[SIMULATOR] = simulator
    app.add_subapp("/simulator", create_simulator_app(simulator))

    async def to_page(request: web.Request) -> web.Response:
        raise web.HTTPFound("/simulator/")

    app.router.add_get("/simulator", to_page)
    return simulator
