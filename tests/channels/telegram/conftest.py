from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.channels.telegram.fake_bot_api import FakeBotApi


@pytest_asyncio.fixture
async def bot_api() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    await fake.start()
    yield fake
    await fake.close()
