"""An idle widget tab: the hub pings every open tab from one timer, a tab that stops answering is
dropped and one that answers stays (sweeps run by hand, ``hub.sweep()``, instead of waiting for the
12.5 s timer); the tab's frames are read after its handler returned, and a failure there still closes
and forgets the tab."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channels.webchat.adapter import WebchatAdapter
from channels.webchat.identity import visitor_of
from gateway.webchat.hub import WIDGET_HUB, WidgetHub
from gateway.webchat.sockets import PING_AFTER_SWEEPS, VisitorSocket
from tests.gateway.widget_tabs import add_webchat_channel
from tests.harness import Gateway, start_gateway

TOKEN = "heartbeat-token-0123456789"
SHOP = "https://shop.example"
KEY_ALIVE = "aliveAAAAAAAAAAAAAAAAAAAAAAAA"
KEY_GONE = "goneBBBBBBBBBBBBBBBBBBBBBBBBB"


@pytest.fixture
async def gw(tmp_path: Path):
    gateway = await start_gateway(tmp_path)
    await add_webchat_channel(gateway, TOKEN, "Shop chat", allowed_origins=[SHOP])
    await gateway.runner.app[WIDGET_HUB].stop_heartbeat()  # only the sweeps a test runs
    yield gateway
    await gateway.close()


async def tab(gw: Gateway, key: str) -> aiohttp.ClientWebSocketResponse:
    """A widget tab that answers pings only when told to (autoping off), past its ``ready``."""
    ws = await gw.http.ws_connect(
        f"{gw.base_url}/webchat/{TOKEN}/ws", params={"key": key}, headers={"Origin": SHOP}, autoping=False
    )
    while json.loads((await ws.receive(10)).data)["type"] != "ready":
        pass
    return ws


async def round_trip(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """A widget ``ping`` frame and its ``pong``: the server has handled everything sent before it."""
    await ws.send_json({"type": "ping"})
    msg = await ws.receive(10)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    frame: dict[str, Any] = json.loads(msg.data)
    return frame


def sweeps(hub: WidgetHub, n: int) -> None:
    for _ in range(n):
        hub.sweep()


async def test_a_tab_that_stops_answering_pings_is_dropped_and_one_that_answers_stays(gw: Gateway):
    hub = gw.runner.app[WIDGET_HUB]
    alive, gone = await tab(gw, KEY_ALIVE), await tab(gw, KEY_GONE)

    sweeps(hub, PING_AFTER_SWEEPS)  # both were quiet long enough: each gets a ping
    for ws in (alive, gone):
        ping = await ws.receive(10)
        assert ping.type == aiohttp.WSMsgType.PING
    await alive.pong(ping.data)
    assert (await round_trip(alive))["type"] == "pong"  # the pong reached the server before this

    hub.sweep()  # the unanswered ping: that tab is gone
    closed = await gone.receive(10)
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)

    # The tab that answered is still open and served, and a sweep later it is not dropped either.
    assert (await round_trip(alive))["type"] == "pong"
    hub.sweep()
    assert (await round_trip(alive))["type"] == "pong"
    await alive.close()


async def test_a_tab_that_talks_is_not_pinged(gw: Gateway):
    hub = gw.runner.app[WIDGET_HUB]
    ws = await tab(gw, KEY_ALIVE)
    for _ in range(3):
        sweeps(hub, PING_AFTER_SWEEPS - 1)
        assert (await round_trip(ws))["type"] == "pong"  # heard from: the count starts over
    hub.sweep()
    assert (await round_trip(ws))["type"] == "pong"  # no ping came before the pong
    await ws.close()


async def test_a_frame_the_server_fails_on_closes_the_tab_with_1011_and_forgets_it(gw: Gateway, caplog):
    hub = gw.runner.app[WIDGET_HUB]
    ws = await tab(gw, KEY_GONE)
    (channel_id,) = hub._tabs  # the one channel with an open tab
    adapter = await gw.container.adapters.get(channel_id)
    assert isinstance(adapter, WebchatAdapter)
    address = visitor_of(
        key=KEY_GONE, identifier=None, signature=None, secret=None, identity_required=False
    ).address
    assert adapter.online(address) and hub.tabs_of(channel_id, address)

    removed = asyncio.Event()
    remove = hub.remove

    def removing(sock: VisitorSocket) -> None:
        remove(sock)
        removed.set()

    def broken(visitor: Any, ip: str) -> None:
        raise RuntimeError("database gone")

    hub.remove = removing  # type: ignore[method-assign,assignment]
    adapter.check_frame = broken  # type: ignore[method-assign]
    await ws.send_json({"type": "message", "client_id": "m1", "text": "hello?"})
    closed = await ws.receive(10)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1011  # the widget reconnects
    await asyncio.wait_for(removed.wait(), 10)
    assert not adapter.online(address) and hub.tabs_of(channel_id, address) == ()
    assert "failed to handle a visitor frame" in caplog.text
