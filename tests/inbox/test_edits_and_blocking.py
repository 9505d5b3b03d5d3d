"""The inbox hooks the Telegram channel needs, on any channel: edits that keep their history, profile
attributes onto the contact, and contacts marked when they block the business."""

from __future__ import annotations

from inbox.model import InboundMessage, PermanentChannelError, Reason


def _msg(provider_id: str, text: str | None, **extra) -> InboundMessage:
    return InboundMessage(
        channel_id=1, provider_message_id=provider_id, sender="+15550001234", text=text, **extra
    )


async def test_edits_rewrite_the_text_and_keep_every_earlier_version(gateway):
    pipeline = gateway.container.pipeline
    first = await pipeline.receive(_msg("m-1", "see you at 5"))
    stream = await gateway.stream()
    await stream.ready()

    edit = await pipeline.receive(_msg("m-1:edit:1", "see you at 6", edit_of="m-1"))
    assert edit.message_id == first.message_id and not edit.duplicate
    event = await stream.next(lambda e: e["type"] == "message.updated")
    assert event["data"]["message"]["text"] == "see you at 6"

    again = await pipeline.receive(_msg("m-1:edit:1", "see you at 6", edit_of="m-1"))  # redelivered
    assert again.duplicate
    await pipeline.receive(_msg("m-1:edit:2", "see you at 7", edit_of="m-1"))

    status, page = await gateway.api("GET", f"/conversations/{first.conversation_id}/messages")
    [message] = page["items"]
    assert message["text"] == "see you at 7"
    assert [h["text"] for h in message["edit_history"]] == ["see you at 5", "see you at 6"]


async def test_an_edit_of_an_unknown_message_is_kept_as_that_message(gateway):
    pipeline = gateway.container.pipeline
    result = await pipeline.receive(_msg("x:edit:9", "edited text", edit_of="x"))
    assert (await pipeline.receive(_msg("x:edit:9", "edited text", edit_of="x"))).duplicate  # redelivered
    late = await pipeline.receive(_msg("x", "original text"))  # the original, arriving after its edit
    assert late.duplicate and late.message_id == result.message_id
    await pipeline.receive(_msg("x:edit:10", "edited again", edit_of="x"))
    status, page = await gateway.api("GET", f"/conversations/{result.conversation_id}/messages")
    [message] = page["items"]
    assert (message["provider_message_id"], message["text"]) == ("x", "edited again")
    assert [h["text"] for h in message["edit_history"]] == ["edited text"]


async def test_an_edit_that_changes_nothing_keeps_no_history_and_a_new_kind_is_taken(gateway):
    pipeline = gateway.container.pipeline
    first = await pipeline.receive(_msg("k-1", "hello"))
    assert (await pipeline.receive(_msg("k-1:edit:1", "hello", edit_of="k-1"))).duplicate
    deleted = await pipeline.receive(_msg("k-1:revoke", None, edit_of="k-1", content_type="deleted"))
    assert deleted.message_id == first.message_id and not deleted.duplicate
    status, page = await gateway.api("GET", f"/conversations/{first.conversation_id}/messages")
    [message] = page["items"]
    assert (message["content_type"], message["text"]) == ("deleted", None)
    assert [h["text"] for h in message["edit_history"]] == ["hello"]


async def test_profile_attributes_land_on_the_contact_and_the_newest_wins(gateway):
    pipeline = gateway.container.pipeline
    result = await pipeline.receive(_msg("a-1", "hi", contact_attributes={"telegram_username": "old"}))
    await pipeline.receive(_msg("a-2", "hi", contact_attributes={"telegram_username": "new"}))
    status, conversation = await gateway.api("GET", f"/conversations/{result.conversation_id}")
    status, contact = await gateway.api("GET", f"/contacts/{conversation['contact_id']}")
    assert contact["attributes"] == {"telegram_username": "new"}


async def test_a_contact_who_blocked_us_is_marked_until_they_write_again(gateway):
    loop = await gateway.loopback()
    received = await loop.customer_writes("+15550009999", "hi")
    stream = await gateway.stream()
    await stream.ready()

    async def contact() -> dict:
        status, conversation = await gateway.api("GET", f"/conversations/{received.conversation_id}")
        status, body = await gateway.api("GET", f"/contacts/{conversation['contact_id']}")
        return body

    # Another permanent failure does not mark anyone.
    loop.failures = [PermanentChannelError(Reason.INVALID_RECIPIENT, "no such user")]
    status, msg = await gateway.api(
        "POST", f"/conversations/{received.conversation_id}/messages", json_body={"text": "one"}
    )
    await stream.next(lambda e: e["type"] == "message.updated" and e["data"]["message"]["id"] == msg["id"])
    assert "blocked_channels" not in (await contact())["attributes"]

    loop.failures = [PermanentChannelError(Reason.BLOCKED_BY_USER, "bot was blocked by the user")]
    status, msg = await gateway.api(
        "POST", f"/conversations/{received.conversation_id}/messages", json_body={"text": "two"}
    )
    failed = await stream.next(
        lambda e: e["type"] == "message.updated" and e["data"]["message"]["id"] == msg["id"]
    )
    assert failed["data"]["message"]["reason"] == "blocked_by_user"
    assert list((await contact())["attributes"]["blocked_channels"]) == ["1"]

    await loop.customer_writes("+15550009999", "sorry, unblocked you")
    assert "blocked_channels" not in (await contact())["attributes"]
