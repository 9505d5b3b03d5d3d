"""The Telegram channel's promises beyond the main conversation: webhook secrets, groups, edits,
documents, long texts, the polling watchdog and 409s, a channel with no token, and the token kept secret."""

from __future__ import annotations

import logging
from pathlib import Path

from channels.telegram import TelegramAdapter
from inbox.model import Attachment, InboundMessage
from inbox.outbox import Draft
from tests.channels.telegram.fake_bot_api import Failure, FakeBotApi, fixture
from tests.channels.telegram.helpers import telegram_gateway
from tests.harness import start_gateway

PDF = b"%PDF-1.4\n" + b"1 0 obj <<>> endobj\n" * 200 + b"%%EOF"


async def _incoming_count(tg) -> int:
    status, page = await tg.gw.api("GET", "/conversations")
    total = 0
    for conversation in page["items"]:
        if conversation["channel_id"] == tg.channel_id:
            total += len(await tg.messages(conversation["id"]))
    return total


async def test_webhook_needs_the_secret_token(tmp_path: Path, bot_api: FakeBotApi):
    bot_api.fail_next("setWebhook", Failure(status=502))  # Telegram hiccups: registration is retried
    tg = await telegram_gateway(tmp_path, bot_api, "webhook")
    try:
        await bot_api.wait_for("setWebhook", lambda c: c.answer is True)
        assert [getattr(c.answer, "status", 200) for c in bot_api.calls_of("setWebhook")] == [502, 200]
        url = f"{tg.gw.base_url}/webhooks/telegram/{tg.channel_id}"
        update = fixture("private_text.json")
        for headers in (
            {},
            {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
            {"X-Telegram-Bot-Api-Secret-Token": ""},
        ):
            async with tg.gw.http.post(url, json=update, headers=headers) as resp:
                assert resp.status == 403
        assert await _incoming_count(tg) == 0  # nothing stored

        secret = tg.channel["config"]["webhook_secret"]
        async with tg.gw.http.post(
            url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
        ) as resp:
            assert resp.status == 200
        # Stored before the 200: it is there right away, and a redelivery changes nothing.
        assert await _incoming_count(tg) == 1
        async with tg.gw.http.post(
            url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
        ) as resp:
            assert resp.status == 200
        assert await _incoming_count(tg) == 1
        async with tg.gw.http.post(
            url, data=b"{not json", headers={"X-Telegram-Bot-Api-Secret-Token": secret}
        ) as resp:
            assert resp.status == 400
    finally:
        await tg.close()


async def test_a_polling_channel_takes_no_webhooks(tmp_path: Path, bot_api: FakeBotApi):
    tg = await telegram_gateway(tmp_path, bot_api, "polling")
    try:
        secret = tg.channel["config"]["webhook_secret"]
        async with tg.gw.http.post(
            f"{tg.gw.base_url}/webhooks/telegram/{tg.channel_id}",
            json=fixture("private_text.json"),
            headers={"X-Telegram-Bot-Api-Secret-Token": secret},
        ) as resp:
            assert resp.status == 403
        assert await _incoming_count(tg) == 0
    finally:
        await tg.close()


async def test_group_chat_is_one_conversation_with_each_sender_named(tmp_path: Path, bot_api: FakeBotApi):
    tg = await telegram_gateway(tmp_path, bot_api, "webhook")
    try:
        group = bot_api.group(-1001234567890, "Shop regulars")
        bob = bot_api.user(222, "Bob", username="bobby")
        cleo = bot_api.user(333, "Cleo")
        await bot_api.user_sends(bob, "does the shop open on Sunday?", group=group)
        await bot_api.push({"message": fixture("group_join.json")["message"]})  # Cleo joins: not a message
        await bot_api.user_sends(cleo, "I think it does", group=group)
        await bot_api.user_sends(bob, "privately: can I return a gift?")

        first = await tg.stored("Bob (@bobby): does the shop open on Sunday?")
        second = await tg.stored("Cleo: I think it does")
        private = await tg.stored("privately: can I return a gift?")
        assert first["conversation_id"] == second["conversation_id"] != private["conversation_id"]
        texts = [m["text"] for m in await tg.messages(first["conversation_id"])]
        assert texts == ["Bob (@bobby): does the shop open on Sunday?", "Cleo: I think it does"]

        reply = await tg.reply(first["conversation_id"], "Yes, 10 to 4.")
        await tg.status_of(reply["id"], "sent")
        call = await bot_api.wait_for("sendMessage", lambda c: c.params["text"] == "Yes, 10 to 4.")
        assert call.params["chat_id"] == group.id  # to the group, not to Bob
    finally:
        await tg.close()


async def test_an_edit_rewrites_the_message_and_keeps_its_history(tmp_path: Path, bot_api: FakeBotApi):
    tg = await telegram_gateway(tmp_path, bot_api, "polling")
    try:
        ann = bot_api.user(111, "Ann", "Lee", "ann")
        original = await bot_api.user_sends(ann, "my order is 1243")
        stored = await tg.stored("my order is 1243")
        await bot_api.user_edits(ann, original, "my order is 1234")
        edited = await tg.stored("my order is 1234")
        assert edited["id"] == stored["id"]
        assert [h["text"] for h in edited["edit_history"]] == ["my order is 1243"]
        messages = await tg.messages(stored["conversation_id"])
        assert [m["text"] for m in messages] == ["my order is 1234"]
    finally:
        await tg.close()


async def test_documents_both_ways_and_long_replies_in_parts(tmp_path: Path, bot_api: FakeBotApi):
    tg = await telegram_gateway(tmp_path, bot_api, "webhook")
    try:
        ann = bot_api.user(111, "Ann", "Lee", "ann")
        await bot_api.user_sends_document(
            ann, PDF, "invoice-1234.pdf", "application/pdf", caption="my invoice"
        )
        incoming = await tg.stored("my invoice")
        [attachment] = incoming["attachments"]
        assert (
            attachment["filename"] == "invoice-1234.pdf" and attachment["content_type"] == "application/pdf"
        )
        assert await tg.gw.container.media.get(attachment["media_key"]) == PDF

        key = await tg.gw.container.media.put(PDF)
        view = await tg.gw.container.outbox.submit(
            Draft(
                incoming["conversation_id"],
                text="Corrected invoice attached",
                attachments=(
                    Attachment(content_type="application/pdf", filename="invoice-1234-v2.pdf", media_key=key),
                ),
            )
        )
        await tg.status_of(view.id, "sent")
        call = await bot_api.wait_for("sendDocument")
        assert call.files["document"] == PDF and call.params["_filename_document"] == "invoice-1234-v2.pdf"
        assert call.params["caption"] == "Corrected invoice attached"

        # 9,000 characters go as three messages cut between words; a 429 on the second part does not
        # make the first go twice.
        long_text = " ".join(f"w{i:03d}" for i in range(1800))
        mark = len(bot_api.calls)
        bot_api.fail_next(
            "sendMessage", None, Failure(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        )
        reply = await tg.reply(incoming["conversation_id"], long_text)
        sent = await tg.status_of(reply["id"], "sent")
        parts = [c for c in bot_api.calls[mark:] if c.method == "sendMessage" and isinstance(c.answer, dict)]
        assert len(parts) == 3
        assert all(len(p.params["text"]) <= 4096 for p in parts)
        assert " ".join(p.params["text"] for p in parts) == long_text
        assert sent["provider_message_id"] == f"111:{parts[-1].answer['message_id']}"
    finally:
        await tg.close()


async def test_polling_watchdog_builds_a_new_client_after_network_errors(tmp_path: Path, bot_api: FakeBotApi):
    tg = await telegram_gateway(tmp_path, bot_api, "polling")
    try:
        adapter = await tg.gw.container.adapters.get(tg.channel_id)
        assert isinstance(adapter, TelegramAdapter) and adapter.polling_client_builds == 1
        ann = bot_api.user(111, "Ann")
        # The next polls: the connection drops, then a 502 from a proxy; then all is well again.
        mark = len(bot_api.calls)
        bot_api.fail_next("getUpdates", Failure(drop=True), Failure(status=502))
        await bot_api.end_long_polls()
        await bot_api.wait_for("getUpdates", lambda c: getattr(c.answer, "status", None) == 502, after=mark)
        await bot_api.user_sends(ann, "are you there?")
        await tg.stored("are you there?")
        assert adapter.polling_client_builds == 3
        assert len(bot_api.calls_of("deleteWebhook")) == 3  # each new client clears webhooks first
        assert await _incoming_count(tg) == 1
    finally:
        await tg.close()


async def test_polling_recovers_from_409_conflicts(tmp_path: Path, bot_api: FakeBotApi, caplog):
    tg = await telegram_gateway(tmp_path, bot_api, "polling")
    try:
        ann = bot_api.user(111, "Ann")
        # Someone set a webhook for the bot: getUpdates answers 409 until it is deleted again.
        bot_api.set_webhook_elsewhere("https://old-deployment.example/hook")
        mark = len(bot_api.calls)
        await bot_api.end_long_polls()
        conflict = await bot_api.wait_for("getUpdates", after=mark)
        assert getattr(conflict.answer, "status", None) == 409
        await bot_api.wait_for("deleteWebhook", after=mark)
        await bot_api.wait_for("getUpdates", lambda c: True, after=mark + 2, answered=False)
        await bot_api.user_sends(ann, "hello again")
        await tg.stored("hello again")

        # Another instance polling the same bot: warned about, backed off, recovered.
        bot_api.fail_next("getUpdates", Failure(**_error("other_poller")))
        await bot_api.end_long_polls()
        await bot_api.user_sends(ann, "still there?")
        await tg.stored("still there?")
        assert "another instance polling this bot" in caplog.text
    finally:
        await tg.close()


async def test_a_channel_without_a_token_starts_harmlessly_and_sends_fail_saying_why(tmp_path: Path):
    gw = await start_gateway(tmp_path)  # the demo seeds a polling Telegram channel with no token
    try:
        status, channels = await gw.api("GET", "/channels")
        demo = next(c for c in channels["items"] if c["kind"] == "telegram")
        assert "bot_token" not in demo["config"]
        received = await gw.container.pipeline.receive(
            InboundMessage(channel_id=demo["id"], provider_message_id="t-1", sender="111", text="hi")
        )
        stream = await gw.stream()
        await stream.ready()
        status, message = await gw.api(
            "POST", f"/conversations/{received.conversation_id}/messages", json_body={"text": "hello"}
        )
        failed = await stream.next(
            lambda e: e["type"] == "message.updated" and e["data"]["message"]["id"] == message["id"]
        )
        assert failed["data"]["message"]["status"] == "failed"
        assert failed["data"]["message"]["reason"] == "channel_error"
        assert "no bot_token" in failed["data"]["message"]["error_detail"]
    finally:
        await gw.close()


async def test_the_bot_token_stays_secret(tmp_path: Path, bot_api: FakeBotApi, caplog):
    # Everything the Telegram side logs, at its most verbose. (aiosqlite's DEBUG echoes every SQL
    # parameter, secrets included, whatever the channel: that is the database layer's, not ours.)
    caplog.set_level(logging.INFO)
    for name in ("telegram", "httpx", "httpcore", "channels"):
        caplog.set_level(logging.DEBUG, logger=name)
    tg = await telegram_gateway(tmp_path, bot_api, "polling")
    try:
        ann = bot_api.user(111, "Ann")
        await bot_api.user_sends_photo(ann, b"\xff\xd8" + b"p" * 500 + b"\xff\xd9", caption="photo")
        incoming = await tg.stored("photo")
        bot_api.user_blocks_bot(ann)
        reply = await tg.reply(incoming["conversation_id"], "thanks")
        failed = await tg.status_of(reply["id"], "failed")
        bot_api.fail_next("getUpdates", Failure(drop=True))
        await bot_api.end_long_polls()
        await bot_api.wait_for("deleteWebhook", after=len(bot_api.calls))

        _, agent_token = await tg.gw.user("agent2@demo.switchboard.test", inbox_ids=[1])
        status, listed = await tg.gw.api("GET", "/channels", token=agent_token)
        mine = next(c for c in listed["items"] if c["id"] == tg.channel_id)
        assert "bot_token" not in mine["config"] and "webhook_secret" not in mine["config"]
        status, as_admin = await tg.gw.api("GET", "/channels")
        assert (
            next(c for c in as_admin["items"] if c["id"] == tg.channel_id)["config"]["bot_token"]
            == bot_api.token
        )

        assert "getUpdates" in caplog.text and "<bot-token>" in caplog.text  # the library logged URLs...
        assert bot_api.token not in caplog.text  # ...never with the token
        assert bot_api.token.split(":")[1] not in caplog.text
        assert bot_api.token not in (failed["error_detail"] or "")
    finally:
        await tg.close()


def _error(name: str) -> dict:
    body = fixture("errors.json")[name]
    return {
        "status": body["error_code"],
        "description": body["description"],
        "parameters": body.get("parameters"),
    }


async def test_polling_passes_an_unreadable_update_keeps_it_raw_and_stores_the_next(
    tmp_path: Path, bot_api: FakeBotApi
):
    tg = await telegram_gateway(tmp_path, bot_api, "polling")
    try:
        broken = await bot_api.push({"message": fixture("unreadable.json")["message"]})
        ann = bot_api.user(111, "Ann", "Lee", "ann")
        await bot_api.user_sends(ann, "still there?")
        stored = await tg.stored("still there?")
        assert stored["kind"] == "incoming"
        adapter = await tg.gw.container.adapters.get(tg.channel_id)
        assert isinstance(adapter, TelegramAdapter)
        kept = await adapter._state.get(f"unreadable:{broken['update_id']}")
        assert kept is not None and kept["update"]["message"]["message_id"] == "sixty-six"
    finally:
        await tg.close()


async def test_the_webhook_answers_200_to_every_real_update_and_stores_the_messages(
    tmp_path: Path, bot_api: FakeBotApi
):
    tg = await telegram_gateway(tmp_path, bot_api, "webhook")
    try:
        await bot_api.wait_for("setWebhook", lambda c: c.answer is True)
        for name in (
            "inline_query.json",
            "my_chat_member.json",
            "unreadable.json",
            "contact.json",
            "venue.json",
            "dice.json",
            "forwarded.json",
        ):
            await bot_api.push({k: v for k, v in fixture(name).items() if k != "update_id"})
        stored = await tg.stored("[Forwarded from Carl Mo] order 77 arrived broken")
        assert all(status == 200 for status in bot_api.webhook_answers), bot_api.webhook_answers
        texts = [m["text"] for m in await tg.messages(stored["conversation_id"])]
        assert texts == [
            "Bea Diaz: +5511987654321",
            "Blue Café, 12 Rua Augusta (-23.55, -46.63)",
            "🎲 4",
            "[Forwarded from Carl Mo] order 77 arrived broken",
        ]
    finally:
        await tg.close()
