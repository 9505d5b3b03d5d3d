"""The quota is exact across processes: two `switchboard serve` on one database (a PostgreSQL database, or
one SQLite file), 50 concurrent sends to 50 new contacts at limit-1: exactly one conversation opens and
exactly one alert mail goes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from inbox import tables as t
from inbox.db import Database, sqlite_url
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, proc: asyncio.subprocess.Process, url: str, token: str) -> None:
        self.proc, self.url, self.token = proc, url, token

    async def api(
        self, http: aiohttp.ClientSession, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        async with http.request(
            method,
            f"{self.url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as resp:
            return resp.status, await resp.json()


@contextlib.asynccontextmanager
async def serve(data_dir: Path, database_url: str | None, smtp_port: int) -> AsyncIterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--demo",
        "--port",
        str(port),
        "--smtp-port",
        str(free_port()),
        "--data-dir",
        str(data_dir),
        *(["--database-url", database_url] if database_url else []),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    token = None

    async def ready() -> None:
        nonlocal token
        async for raw in proc.stdout:  # type: ignore[union-attr]
            line = raw.decode().strip()
            if line.startswith("Demo admin API token:"):
                token = line.rsplit(" ", 1)[1]
            if line.startswith("Switchboard serving on"):
                return
        raise RuntimeError(f"switchboard serve exited with {await proc.wait()}")

    try:
        await asyncio.wait_for(ready(), 60)
        assert token is not None
        yield Server(proc, f"http://127.0.0.1:{port}", token)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_two_processes_open_exactly_one_conversation_at_limit_minus_one(
    tmp_path: Path, database_url: str | None, smtp_sink
):
    # SQLite: both processes use the same data dir, so the same database file.
    dir_a, dir_b = (tmp_path / "a", tmp_path / "b") if database_url else (tmp_path, tmp_path)
    async with (
        serve(dir_a, database_url, smtp_sink.port) as a,
        serve(dir_b, database_url, smtp_sink.port) as b,
        aiohttp.ClientSession() as http,
    ):
        code, channel = await a.api(
            http,
            "POST",
            "/channels",
            {"inbox_id": 1, "kind": "loopback", "name": "Metered", "config": {"metered": True}},
        )
        assert code == 201, channel
        assert (await a.api(http, "PATCH", "/account", {"included_conversations": 3}))[0] == 200
        for n in range(2):  # 2 of 3 used: limit - 1
            code, m = await b.api(
                http,
                "POST",
                "/messages",
                {"channel_id": channel["id"], "to": f"+1555040000{n}", "text": "hi"},
            )
            assert code == 201 and m["status"] == "queued", m

        async def send(server: Server, n: int) -> dict[str, Any]:
            code, m = await server.api(
                http,
                "POST",
                "/messages",
                {"channel_id": channel["id"], "to": f"+155504{n:05d}", "text": "hello"},
            )
            assert code == 201, m
            return m

        results = await asyncio.gather(*(send(a if n % 2 else b, 100 + n) for n in range(50)))
        outcomes = [(m["status"], m["reason"]) for m in results]
        assert outcomes.count(("queued", None)) == 1, outcomes
        assert outcomes.count(("failed", "quota_exhausted")) == 49

        for server in (a, b):
            code, q = await server.api(http, "GET", "/quota")
            assert (q["used"], q["limit"], q["blocked"], q["tier"]) == (3, 3, True, 100)
        code, page = await a.api(http, "GET", "/billing/conversations")
        assert len(page["items"]) == 3

        (envelope,) = await smtp_sink.wait_for(1)
        assert envelope.rcpt_tos == ["admin@demo.switchboard.test"]

    # Both processes are gone: whatever they had to send is sent, and it was one mail.
    db = Database(database_url or sqlite_url(tmp_path))
    db.connect()
    try:
        async with db.read() as session:
            assert await session.scalar(select(func.count()).select_from(t.OutgoingMail)) == 1
            assert await session.scalar(select(func.count()).select_from(t.QuotaAlert)) == 5
            assert await session.scalar(select(t.OutgoingMail.status)) == "sent"
    finally:
        await db.close()
    assert len(smtp_sink.messages) == 1
