"""A webhook receiver on 127.0.0.1 for tests: answers from a script, keeps every request it got."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    url: str
    # The answers to give, in order, as (status, headers); after the last one it answers 200.
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(dict(request.headers), await request.read()))
        self.arrived.set()
        status, headers = self.script.pop(0) if self.script else (200, {})
        return web.Response(status=status, headers=headers, text=f"answer {status}")

    async def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        async def wait() -> list[Received]:
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()
            return self.requests

        return await asyncio.wait_for(wait(), timeout)


@asynccontextmanager
async def webhook_receiver(path: str = "/hooks/switchboard") -> AsyncIterator[Receiver]:
    app = web.Application()
    receiver = Receiver(url="")
    app.router.add_post(path, receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
