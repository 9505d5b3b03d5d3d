"""``switchboard serve`` runs on the standard loop unless SWITCHBOARD_EVENT_LOOP=uvloop."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from gateway.cli import run_loop
from gateway.config import Settings


async def _loop_kind() -> int:
    return 1 if isinstance(asyncio.get_running_loop(), uvloop.Loop) else 0


def test_uvloop_when_chosen() -> None:
    assert run_loop(_loop_kind(), "uvloop") == 1


def test_asyncio_keeps_the_standard_loop() -> None:
    assert run_loop(_loop_kind(), "asyncio") == 0


def test_the_choice_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().event_loop == "asyncio"
    monkeypatch.setenv("SWITCHBOARD_EVENT_LOOP", "uvloop")
    assert Settings().event_loop == "uvloop"
    monkeypatch.setenv("SWITCHBOARD_EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match="event_loop"):
        Settings()
