"""A running gateway for tests: real HTTP server on 127.0.0.1, real database, the demo seeded.

gw = await start_gateway(tmp_path)
status, body = await gw.api("GET", "/conversations")
stream = await gw.stream(after=0)
event = await stream.next(lambda e: e["type"] == "message.created")
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from channels.base import LoopbackChannel
from gateway.app import make_app
from gateway.config import Settings
from gateway.container import Container, build
from gateway.demo import seed_demo


class ManualClock:
    """An injected clock: tests move time instead of sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when


class StreamClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    async def next(
        self, match: Callable[[dict[str, Any]], bool] = lambda e: True, timeout: float = 10
    ) -> dict[str, Any]:
        """The next event (not a control frame) that matches; events before it are kept in ``received``."""

        async def read() -> dict[str, Any]:
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"stream closed: {msg.type} {msg.extra}")
                event: dict[str, Any] = json.loads(msg.data)
                if "id" not in event:
                    continue
                self.received.append(event)
                if match(event):
                    return event

        return await asyncio.wait_for(read(), timeout)

    async def ready(self, timeout: float = 10) -> int:
        """Wait for the end of the replayed log; returns the position."""

        async def read() -> int:
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"stream closed: {msg.type}")
                event = json.loads(msg.data)
                if event.get("type") == "stream.ready":
                    return int(event["after"])
                self.received.append(event)

        return await asyncio.wait_for(read(), timeout)

    async def close(self) -> None:
        await self.ws.close()


@dataclass
class Gateway:
    container: Container
    runner: web.AppRunner
    base_url: str
    http: aiohttp.ClientSession
    admin_token: str
    clock: Callable[[], datetime]
    streams: list[StreamClient] = field(default_factory=list)

    async def api(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        hdrs = {"Authorization": f"Bearer {token or self.admin_token}", **(headers or {})}
        kwargs: dict[str, Any] = {"headers": hdrs}
        if json_body is not None:
            kwargs["json"] = json_body
        if data is not None:
            kwargs["data"] = data
        async with self.http.request(method, f"{self.base_url}/api/v1{path}", **kwargs) as resp:
            text = await resp.text()
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = text
            return resp.status, body

    async def upload(self, data: bytes, filename: str, token: str | None = None) -> tuple[int, Any]:
        """``POST /uploads`` as the web inbox sends it (multipart); the browser's type claim is wrong."""
        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type="text/html")
        async with self.http.post(
            f"{self.base_url}/api/v1/uploads",
            data=form,
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
        ) as resp:
            return resp.status, await resp.json()

    async def stream(self, after: int | None = None, token: str | None = None) -> StreamClient:
        query = f"?after={after}" if after is not None else ""
        ws = await self.http.ws_connect(
            f"{self.base_url}/api/v1/stream{query}",
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
        )
        client = StreamClient(ws)
        self.streams.append(client)
        return client

    async def loopback(self) -> LoopbackChannel:
        """The demo inbox's loopback channel (id 1)."""
        adapter = await self.container.adapters.get(1)
        assert isinstance(adapter, LoopbackChannel)
        return adapter

    async def user(
        self, email: str, role: str = "agent", inbox_ids: list[int] | None = None
    ) -> tuple[int, str]:
        status, body = await self.api(
            "POST", "/users", json_body={"email": email, "role": role, "inbox_ids": inbox_ids or []}
        )
        assert status == 201, body
        return body["user"]["id"], body["token"]

    async def close(self) -> None:
        for s in self.streams:
            await s.close()
        await self.http.close()
        await self.runner.cleanup()


async def start_gateway(
    data_dir: Path,
    *,
    database_url: str | None = None,
    clock: Callable[[], datetime] | None = None,
    settings: dict[str, Any] | None = None,
    customize: Callable[[Container], None] | None = None,
) -> Gateway:
    # Port 0 for SMTP too: tests never collide with each other or with a running `make run`.
    cfg = Settings(
        data_dir=data_dir, database_url=database_url, http_port=0, **{"smtp_port": 0, **(settings or {})}
    )
    container = build(cfg, clock=clock or (lambda: datetime.now(UTC)))
    if customize is not None:
        customize(container)
    runner = web.AppRunner(make_app(container), shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    token = await seed_demo(container)
    return Gateway(
        container, runner, f"http://127.0.0.1:{port}", aiohttp.ClientSession(), token, container.clock
    )


async def jobs_done(gw: Gateway) -> None:
    """Wait until the embedded job queue has nothing queued, delayed or running."""
    from inbox.jobs import InProcessJobs

    assert isinstance(gw.container.jobs, InProcessJobs)
    await gw.container.jobs.join()
