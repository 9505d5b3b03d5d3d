"""Two gateways on one database and one Redis poll a Telegram bot once between them: only the holder
of the channel's lease calls getUpdates, and the other takes over when it stops, neither losing nor
repeating an update."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.telegram import TelegramAdapter
from tests.channels.telegram.fake_bot_api import FakeBotApi
from tests.channels.telegram.helpers import telegram_gateway
from tests.harness import start_gateway


async def test_two_gateways_poll_a_bot_once_and_hand_over(
    tmp_path: Path, bot_api: FakeBotApi, redis_url: str
):
    # A short lease so the hand-over is quick, but long enough that a loaded CI machine (two gateways
    # on one loop here) renews it in time; both gateways share the SQLite file in tmp_path.
    lease = 1.5
    cluster = {"redis_url": redis_url, "poller_lease_seconds": lease}
    a = await telegram_gateway(tmp_path, bot_api, "polling", settings=cluster)  # a polls (helper waits)
    b = await start_gateway(tmp_path, settings=cluster)
    b_stream = await b.stream(after=0)
    ann = bot_api.user(111, "Ann", "Lee", "ann")
    a_closed = False
    try:
        mark = len(bot_api.calls)
        adapter_a = await a.gw.container.adapters.get(a.channel_id)
        adapter_b = await b.container.adapters.get(a.channel_id)  # b runs the channel too (for sends)
        assert isinstance(adapter_a, TelegramAdapter) and isinstance(adapter_b, TelegramAdapter)

        pushed = [await bot_api.user_sends(ann, "one")]
        await a.stored("one")
        # While a holds the lease b never starts a polling client (each starts with deleteWebhook);
        # a second poller would also show as getUpdates calls ended by a 409 conflict.
        with pytest.raises(TimeoutError):  # three lease lifetimes
            await bot_api.wait_for("deleteWebhook", after=mark, answered=False, timeout=3 * lease)
        pushed.append(await bot_api.user_sends(ann, "two"))
        await a.stored("two")
        assert adapter_a.polling_client_builds == 1 and adapter_b.polling_client_builds == 0
        assert not [c for c in bot_api.calls_of("getUpdates") if getattr(c.answer, "status", 200) == 409]

        # a stops (letting go of its lease): b takes over and goes on from a's stored offset.
        await a.close()
        a_closed = True
        mark = len(bot_api.calls)
        pushed.append(await bot_api.user_sends(ann, "three"))
        first = await bot_api.wait_for("getUpdates", after=mark, answered=False, timeout=10)
        assert first.params["offset"] == pushed[2]["update_id"]
        event = await b_stream.next(
            lambda e: e["type"] == "message.created" and e["data"]["message"]["text"] == "three"
        )
        assert adapter_b.polling_client_builds == 1
        status, page = await b.api(
            "GET", f"/conversations/{event['data']['message']['conversation_id']}/messages"
        )
        assert status == 200
        assert [m["text"] for m in page["items"]] == ["one", "two", "three"]
        assert {u["update_id"]: bot_api.handed_out[u["update_id"]] for u in pushed} == {
            u["update_id"]: 1 for u in pushed
        }
    finally:
        await b.close()
        if not a_closed:
            await a.close()
