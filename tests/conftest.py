from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.harness import Gateway, ManualClock, start_gateway
from tests.services import create_database, postgres_server, redis_server

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    yield from postgres_server()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from redis_server(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"t{next(_db_numbers)}"
    create_database(pg_server, name)
    return f"{pg_server}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """Run a test on both stores: None = SQLite under the gateway's data dir."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = await start_gateway(tmp_path)
    yield gw
    await gw.close()


# -- headless Chromium (Debian's package) for page tests: pytest-playwright-asyncio's `page` fixture --


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(executable):
        from tests.services import missing

        missing("chromium (Debian package chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": executable,
        # Keep Chromium off the network: only 127.0.0.1 and localhost resolve.
        "args": ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"],
    }


# -- an SMTP sink (aiosmtpd inside the test's loop) for mail the gateway sends -------------------------


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list = []  # aiosmtpd Envelope objects
        self.arrived = asyncio.Event()
        self.port = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(envelope)
        self.arrived.set()
        return "250 OK"

    async def wait_for(self, count: int, timeout: float = 10) -> list:
        async def wait() -> list:
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()
            return self.messages

        return await asyncio.wait_for(wait(), timeout)


@pytest_asyncio.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    from aiosmtpd.smtp import SMTP

    sink = SmtpSink()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, hostname="127.0.0.1"), "127.0.0.1", 0
    )
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    server.close()
    await server.wait_closed()


# -- a hung test fails (pytest-timeout, pyproject.toml) and first prints every asyncio task's awaits ----

from tests.timeouts import pytest_timeout_set_timer  # noqa: E402, F401  (registers the hook)
