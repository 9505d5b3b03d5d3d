from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.channels.telegram.fake_bot_api import FakeBotApi


@pytest_asyncio.fixture
async def bot_api() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    await fake.start()
    yield fake
    await fake.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # PTB 22.2+ warns on every RetryAfter that its int form will become a timedelta; the adapter
    # handles both (channels/telegram/errors.py retry_seconds).
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"))
