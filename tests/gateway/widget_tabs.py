"""A widget tab as a test sees it: every frame it got, and a way to ask "anything else?"."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.harness import Gateway


class Tab:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def next(self, type_: str | None = None) -> dict[str, Any]:
        while True:
            msg = await self.ws.receive(10)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            frame: dict[str, Any] = json.loads(msg.data)
            self.frames.append(frame)
            if type_ is None or frame["type"] == type_:
                return frame

    async def everything_until_pong(self) -> list[dict[str, Any]]:
        """Every frame the server sent this tab before it answered a ping (frames go out in order)."""
        await self.ws.send_json({"type": "ping"})
        seen = []
        while (frame := await self.next())["type"] != "pong":
            seen.append(frame)
        return seen


async def open_tab(http: aiohttp.ClientSession, base_url: str, token: str, key: str) -> Tab:
    """A widget connected as visitor ``key`` and past its ``ready`` frame."""
    tab = Tab(await http.ws_connect(f"{base_url}/webchat/{token}/ws", params={"key": key}))
    await tab.next("ready")
    return tab


async def add_webchat_channel(gw: Gateway, token: str, name: str = "Chat", **config: Any) -> int:
    """A webchat channel on inbox 1 for the widget ``token`` (more ``config`` keys as given); its id."""
    status, channel = await gw.api(
        "POST",
        "/channels",
        json_body={"inbox_id": 1, "kind": "webchat", "name": name, "config": {"token": token, **config}},
    )
    assert status == 201, channel
    return int(channel["id"])
