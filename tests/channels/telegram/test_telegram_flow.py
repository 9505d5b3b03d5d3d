"""A Telegram user, played through the fake Bot API server, talks to an agent through a running gateway,
in webhook mode and in polling mode: message in, reply out, buttons, photos both ways, a 429 retried,
a blocked user, and a restart in polling mode that neither loses nor repeats an update."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.telegram import TelegramAdapter
from inbox.model import Attachment
from inbox.outbox import Draft
from tests.channels.telegram.fake_bot_api import Failure, FakeBotApi, fixture
from tests.channels.telegram.helpers import telegram_gateway

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(200)) + b"IEND\xaeB`\x82"


@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_a_telegram_user_talks_to_an_agent(tmp_path: Path, bot_api: FakeBotApi, mode: str):
    tg = await telegram_gateway(tmp_path, bot_api, mode)
    try:
        if mode == "webhook":
            hook = bot_api.calls_of("setWebhook")[-1].params
            assert (
                hook["url"]
                == tg.channel["webhook_url"]
                == f"https://switchboard.example/webhooks/telegram/{tg.channel_id}"
            )
            assert hook["secret_token"] == tg.channel["config"]["webhook_secret"]
            assert hook["allowed_updates"] == ["message", "edited_message", "callback_query"]
        else:
            # deleteWebhook comes first: getUpdates answers 409 while a webhook is set.
            methods = [c.method for c in bot_api.calls]
            assert methods.index("deleteWebhook") < methods.index("getUpdates")
        ann = bot_api.user(111, "Ann", "Lee", "ann")

        # Message in: the contact is Ann, known by her Telegram user id, with her username.
        await bot_api.user_sends(ann, "Hi, where is my order?")
        incoming = await tg.stored("Hi, where is my order?")
        conversation_id = incoming["conversation_id"]
        status, conversation = await tg.gw.api("GET", f"/conversations/{conversation_id}")
        status, contact = await tg.gw.api("GET", f"/contacts/{conversation['contact_id']}")
        assert contact["name"] == "Ann Lee"
        assert contact["attributes"]["telegram_username"] == "ann"
        assert contact["identities"] == [{"kind": "telegram", "address": "111"}]

        # Agent reply out: the fake server sees it in Ann's chat.
        reply = await tg.reply(conversation_id, "It left our warehouse this morning.")
        sent = await tg.status_of(reply["id"], "sent")
        call = await bot_api.wait_for("sendMessage", lambda c: c.params["text"].startswith("It left"))
        assert call.params["chat_id"] == 111 and call.params["text"] == "It left our warehouse this morning."
        assert sent["provider_message_id"] == f"111:{call.answer['message_id']}"

        # Buttons from a bot flow, and Ann pressing one: the press lands in the same conversation.
        view = await tg.gw.container.outbox.submit(
            Draft(
                conversation_id,
                text="Anything else?",
                buttons=("Track my order", "Talk to a person"),
                origin="bot",
            )
        )
        await tg.status_of(view.id, "sent")
        keyboard = await bot_api.wait_for("sendMessage", lambda c: c.params["text"] == "Anything else?")
        labels = [row[0]["text"] for row in keyboard.params["reply_markup"]["inline_keyboard"]]
        assert labels == ["Track my order", "Talk to a person"]
        press = await bot_api.user_presses(ann, keyboard.answer, "Talk to a person")
        pressed = await tg.stored("Talk to a person")
        assert pressed["conversation_id"] == conversation_id and pressed["content_type"] == "interactive"
        answered = await bot_api.wait_for("answerCallbackQuery")
        assert answered.params["callback_query_id"] == press["callback_query"]["id"]

        # Photo in: the largest size is fetched into the media store, with the caption as text.
        await bot_api.user_sends_photo(ann, JPEG, caption="The box was crushed")
        photo = await tg.stored("The box was crushed")
        assert photo["content_type"] == "image" and photo["conversation_id"] == conversation_id
        [attachment] = photo["attachments"]
        assert attachment["content_type"] == "image/jpeg" and attachment["size"] == len(JPEG)
        assert await tg.gw.container.media.get(attachment["media_key"]) == JPEG

        # Photo out, through the outbox like every send.
        key = await tg.gw.container.media.put(PNG)
        view = await tg.gw.container.outbox.submit(
            Draft(
                conversation_id,
                text="Your return label",
                attachments=(Attachment(content_type="image/png", filename="label.png", media_key=key),),
            )
        )
        await tg.status_of(view.id, "sent")
        photo_call = await bot_api.wait_for("sendPhoto")
        assert photo_call.params["chat_id"] == 111 and photo_call.params["caption"] == "Your return label"
        assert photo_call.files["photo"] == PNG

        # 429: Telegram's retry_after reaches the outbox, which tries again and succeeds.
        bot_api.fail_next("sendMessage", Failure(**_error("too_many_requests")))
        reply = await tg.reply(conversation_id, "Sorry about the box!")
        await tg.status_of(reply["id"], "sent")
        attempts = [c for c in bot_api.calls_of("sendMessage") if c.params["text"] == "Sorry about the box!"]
        assert [getattr(c.answer, "status", 200) for c in attempts] == [429, 200]
        assert tg.retry_hints == [3.0]

        # Ann blocks the bot: the reply fails as blocked_by_user and her contact is marked.
        bot_api.user_blocks_bot(ann)
        reply = await tg.reply(conversation_id, "Did the label arrive?")
        failed = await tg.status_of(reply["id"], "failed")
        assert failed["reason"] == "blocked_by_user" and failed["text"] == "Did the label arrive?"
        status, contact = await tg.gw.api("GET", f"/contacts/{contact['id']}")
        assert str(tg.channel_id) in contact["attributes"]["blocked_channels"]

        texts = [m["text"] for m in await tg.messages(conversation_id)]
        assert texts == [
            "Hi, where is my order?",
            "It left our warehouse this morning.",
            "Anything else?",
            "Talk to a person",
            "The box was crushed",
            "Your return label",
            "Sorry about the box!",
            "Did the label arrive?",
        ]
    finally:
        await tg.close()


async def test_polling_restart_neither_loses_nor_repeats_updates(tmp_path: Path, bot_api: FakeBotApi):
    tg = await telegram_gateway(tmp_path, bot_api, "polling")
    ann = bot_api.user(111, "Ann", "Lee", "ann")
    try:
        pushed = [await bot_api.user_sends(ann, "one"), await bot_api.user_sends(ann, "two")]
        await tg.stored("one")
        await tg.stored("two")
    finally:
        await tg.close()

    # While the gateway is down, Ann keeps writing; Telegram holds the updates.
    pushed += [await bot_api.user_sends(ann, "three"), await bot_api.user_sends(ann, "four")]
    mark = len(bot_api.calls)

    tg2 = await telegram_gateway(tmp_path, bot_api, "polling", create=False, stream_after=0)
    try:
        four = await tg2.stored("four")
        first_poll = await bot_api.wait_for("getUpdates", after=mark, answered=False)
        # It resumed exactly after the last update it stored: "three" is the first it asked for.
        assert first_poll.params["offset"] == pushed[2]["update_id"]
        texts = [m["text"] for m in await tg2.messages(four["conversation_id"])]
        assert texts == ["one", "two", "three", "four"]
        # Every update reached a live poller exactly once.
        assert {u["update_id"]: bot_api.handed_out[u["update_id"]] for u in pushed} == {
            u["update_id"]: 1 for u in pushed
        }
    finally:
        await tg2.close()


def _error(name: str) -> dict:
    body = fixture("errors.json")[name]
    return {
        "status": body["error_code"],
        "description": body["description"],
        "parameters": body.get("parameters"),
    }


async def test_a_crash_between_storing_and_moving_the_offset_repeats_nothing(
    tmp_path: Path, bot_api: FakeBotApi
):
    tg = await telegram_gateway(tmp_path, bot_api, "polling")
    try:
        adapter = await tg.gw.container.adapters.get(tg.channel_id)
        assert isinstance(adapter, TelegramAdapter)
        real_set = adapter._state.set
        failures = ["database went away"]

        async def flaky_set(key, value):
            if failures:
                raise ConnectionError(failures.pop())
            await real_set(key, value)

        adapter._state.set = flaky_set  # type: ignore[method-assign]
        ann = bot_api.user(111, "Ann")
        update = await bot_api.user_sends(ann, "only once, please")
        stored = await tg.stored("only once, please")
        # The offset did not move, so Telegram handed the update out again; the inbox kept one copy.
        await bot_api.user_sends(ann, "next")
        await tg.stored("next")
        assert bot_api.handed_out[update["update_id"]] == 2
        texts = [m["text"] for m in await tg.messages(stored["conversation_id"])]
        assert texts == ["only once, please", "next"]
    finally:
        await tg.close()
