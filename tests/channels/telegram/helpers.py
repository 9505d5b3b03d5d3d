"""A gateway with a Telegram channel wired to the fake Bot API server, in webhook or polling mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.channels.telegram.fake_bot_api import FakeBotApi
from tests.harness import Gateway, StreamClient, start_gateway

# The gateway's public address as Telegram would see it; the fake maps it to 127.0.0.1 like a proxy.
PUBLIC_URL = "https://switchboard.example"


@dataclass
class TelegramGateway:
    gw: Gateway
    bot_api: FakeBotApi
    channel: dict[str, Any]
    stream: StreamClient
    retry_hints: list[float | None] = field(default_factory=list)

    @property
    def channel_id(self) -> int:
        return int(self.channel["id"])

    async def stored(self, text: str, kind: str = "incoming") -> dict[str, Any]:
        """Wait for the live event of a message with this text and return the message."""
        event = await self.stream.next(
            lambda e: (
                e["type"] in ("message.created", "message.updated")
                and e["data"]["message"]["kind"] == kind
                and e["data"]["message"]["text"] == text
            )
        )
        return dict(event["data"]["message"])

    async def status_of(self, message_id: int, status: str) -> dict[str, Any]:
        """Wait until an outgoing message reaches ``status``."""
        event = await self.stream.next(
            lambda e: (
                e["type"] == "message.updated"
                and e["data"]["message"]["id"] == message_id
                and e["data"]["message"]["status"] == status
            )
        )
        return dict(event["data"]["message"])

    async def reply(self, conversation_id: int, text: str) -> dict[str, Any]:
        status, message = await self.gw.api(
            "POST", f"/conversations/{conversation_id}/messages", json_body={"text": text}
        )
        assert status == 201, message
        return dict(message)

    async def messages(self, conversation_id: int) -> list[dict[str, Any]]:
        status, page = await self.gw.api("GET", f"/conversations/{conversation_id}/messages")
        assert status == 200, page
        return list(page["items"])

    async def close(self) -> None:
        await self.gw.close()


async def telegram_gateway(
    tmp_path: Path,
    bot_api: FakeBotApi,
    mode: str,
    *,
    create: bool = True,
    config: dict[str, Any] | None = None,
    stream_after: int | None = None,
    settings: dict[str, Any] | None = None,
) -> TelegramGateway:
    """Start a gateway; with ``create`` add a Telegram channel through ``POST /channels`` and wait until
    it registered its webhook or started polling."""
    knobs = {"public_url": PUBLIC_URL} if mode == "webhook" else {}
    gw = await start_gateway(tmp_path, settings={**knobs, **(settings or {})})
    bot_api.route = lambda url: url.replace(PUBLIC_URL, gw.base_url, 1)
    tg = TelegramGateway(gw, bot_api, {}, await gw.stream(after=stream_after))

    def backoff(attempt: int, hint: float | None) -> float:
        tg.retry_hints.append(hint)
        return 0.01  # the hint is recorded; the test does not wait for it

    gw.container.outbox._backoff = backoff
    if stream_after is None:
        await tg.stream.ready()
    if not create:
        return tg
    mark = len(bot_api.calls)
    cfg = bot_api.channel_config(mode=mode, poll_timeout=5, reconnect_delay=0.01, **(config or {}))
    status, channel = await gw.api(
        "POST", "/channels", json_body={"inbox_id": 1, "kind": "telegram", "name": "Telegram", "config": cfg}
    )
    assert status == 201, channel
    tg.channel = channel
    await bot_api.wait_for("setWebhook" if mode == "webhook" else "getUpdates", after=mark, answered=False)
    return tg
