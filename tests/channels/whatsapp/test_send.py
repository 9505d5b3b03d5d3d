"""Sending through the gate to the simulator: statuses, WhatsApp's own rules and each mapped error code."""

from __future__ import annotations

from channels.whatsapp.simulator import SimulatorSettings
from channels.whatsapp.simulator.platform import ForcedError, Simulator
from inbox.model import Attachment
from inbox.outbox import Draft
from tests.harness import ManualClock

from .test_webhook import PNG


def updated(message_id: int, *statuses: str):
    return lambda e: (
        e["type"] == "message.updated"
        and e["data"]["message"]["id"] == message_id
        and e["data"]["message"]["status"] in statuses
    )


async def open_conversation(world, number: str, name: str = "Ann") -> tuple[int, str]:
    sent, _ = await world.contact_writes(number, content={"body": "hi"}, name=name)
    conversation_id, _ = await world.conversation_of(sent.wamid)
    return conversation_id, sent.wamid


def outgoing(world, wa_id: str):
    return [m for m in world.sim.thread(world.business.phone_number_id, wa_id) if m.direction == "out"]


async def reply(world, conversation_id: int, **body) -> dict:
    status, message = await world.gw.api("POST", f"/conversations/{conversation_id}/messages", json_body=body)
    assert status == 201, message
    return message


async def test_reply_goes_sent_delivered_read_as_a_reply_to_the_contact(make_world, database_url):
    world = await make_world(database_url=database_url)  # on SQLite and on PostgreSQL
    conversation_id, inbound = await open_conversation(world, "+5511987650001")
    stream = await world.gw.stream()
    await stream.ready()
    message = await reply(world, conversation_id, text="Hi Ann, how can I help?")
    await stream.next(updated(message["id"], "sent"))
    delivered = await stream.next(updated(message["id"], "delivered"))
    [out] = outgoing(world, "5511987650001")
    assert out.wamid == delivered["data"]["message"]["provider_message_id"]
    assert (out.text, out.extra["context"]) == ("Hi Ann, how can I help?", inbound)
    assert await world.sim.read_all(world.business.phone_number_id, "5511987650001") == 1
    await stream.next(updated(message["id"], "read"))


async def test_outside_the_window_a_template_goes_and_free_text_is_refused_by_whatsapp(make_world):
    # The gateway's own window policy refuses such text before sending (inbox policies); this test is
    # about WhatsApp's side of the rule: the simulator refuses with 131047 and the adapter maps it.
    clock = ManualClock()
    world = await make_world(clock)
    world.provider_rules_only()
    conversation_id, _ = await open_conversation(world, "+5511987650002")
    clock.advance(hours=25)
    assert not world.sim.window_open(world.business.phone_number_id, "5511987650002")
    stream = await world.gw.stream()
    await stream.ready()

    text = await reply(world, conversation_id, text="Are you still there?")
    failed = await stream.next(updated(text["id"], "sent", "failed"))
    assert failed["data"]["message"]["status"] == "failed"
    assert failed["data"]["message"]["reason"] == "window_closed"
    assert failed["data"]["message"]["error_detail"].startswith("131047")
    assert outgoing(world, "5511987650002") == []  # WhatsApp refused it synchronously

    template = await reply(
        world, conversation_id, template={"name": "order_update", "language": "en_US", "params": ["#1234"]}
    )
    await stream.next(updated(template["id"], "delivered"))
    [out] = outgoing(world, "5511987650002")
    assert (
        out.text == "Your order #1234 has an update: it is on its way."
        and out.extra["template"] == "order_update"
    )


async def test_window_closed_as_a_later_failed_status(make_world):
    clock = ManualClock()
    world = await make_world(clock)
    world.provider_rules_only()
    world.sim.settings.window_mode = "status"  # accepted with a wamid, then a failed status webhook
    conversation_id, _ = await open_conversation(world, "+5511987650003")
    clock.advance(hours=24, seconds=1)
    stream = await world.gw.stream()
    await stream.ready()
    message = await reply(world, conversation_id, text="late")
    failed = await stream.next(updated(message["id"], "failed"))
    assert failed["data"]["message"]["reason"] == "window_closed"
    assert failed["data"]["message"]["error_detail"] == "131047 Re-engagement message"
    [out] = outgoing(world, "5511987650003")
    assert out.status == "failed" and out.wamid == failed["data"]["message"]["provider_message_id"]


async def test_text_over_4096_characters_is_refused_before_sending(world):
    conversation_id, _ = await open_conversation(world, "+5511987650004")
    stream = await world.gw.stream()
    await stream.ready()
    message = await reply(world, conversation_id, text="x" * 4097)
    failed = await stream.next(updated(message["id"], "sent", "failed"))
    assert failed["data"]["message"]["reason"] == "message_too_long"
    assert failed["data"]["message"]["text"] == "x" * 4097  # the text is never lost
    assert outgoing(world, "5511987650004") == []


TEMPLATE_CASES = [
    ({"name": "no_such_template", "language": "en_US", "params": []}, "132001"),
    ({"name": "order_update", "language": "pt_BR", "params": ["#1"]}, "132001"),  # not in that language
    ({"name": "draft_offer", "language": "en_US", "params": ["x"]}, "132001"),  # not approved
    ({"name": "order_update", "language": "en_US", "params": []}, "132000"),  # wrong parameter count
    ({"name": "appointment_reminder", "language": "en_US", "params": ["Ann"]}, "132000"),
]


async def test_template_rules_map_to_template_required(world):
    # One gateway for every case (start-up dominates); each case is its own message.
    world.provider_rules_only()
    conversation_id, _ = await open_conversation(world, "+5511987650005")
    stream = await world.gw.stream()
    await stream.ready()
    for template, code in TEMPLATE_CASES:
        message = await reply(world, conversation_id, template=template)
        failed = await stream.next(updated(message["id"], "sent", "failed"))
        assert failed["data"]["message"]["reason"] == "template_required", template
        assert failed["data"]["message"]["error_detail"].startswith(code), template
    assert outgoing(world, "5511987650005") == []


async def test_marketing_template_to_a_contact_who_stopped_marketing_fails_opted_out(world):
    world.provider_rules_only()
    conversation_id, _ = await open_conversation(world, "+5511987650006")
    world.sim.set_marketing_stopped("5511987650006", True)
    stream = await world.gw.stream()
    await stream.ready()
    message = await reply(
        world, conversation_id, template={"name": "spring_sale", "language": "en_US", "params": ["20%"]}
    )
    failed = await stream.next(updated(message["id"], "failed"))
    assert failed["data"]["message"]["reason"] == "opted_out"
    assert failed["data"]["message"]["error_detail"].startswith("131050")


SYNC_ERROR_CASES = [
    (ForcedError(400, 131047, "Re-engagement message"), "window_closed"),
    (ForcedError(400, 131050, "Unable to deliver the message"), "opted_out"),
    (ForcedError(400, 132000, "Number of parameters does not match"), "template_required"),
    (ForcedError(400, 132001, "Template name does not exist in the translation"), "template_required"),
    (ForcedError(400, 131026, "Message Undeliverable"), "channel_error"),
    (ForcedError(401, 190, "Invalid OAuth access token"), "channel_error"),
]


async def test_synchronous_error_codes(world):
    conversation_id, _ = await open_conversation(world, "+5511987650007")
    stream = await world.gw.stream()
    await stream.ready()
    for forced, reason in SYNC_ERROR_CASES:
        world.sim.forced_errors.append(forced)
        message = await reply(world, conversation_id, text="hello")
        failed = await stream.next(updated(message["id"], "sent", "failed"))
        assert failed["data"]["message"]["status"] == "failed", forced
        assert failed["data"]["message"]["reason"] == reason, forced
        assert failed["data"]["message"]["error_detail"].startswith(str(forced.code)), forced


async def test_throughput_limit_and_5xx_are_retried_until_sent_once(world):
    conversation_id, _ = await open_conversation(world, "+5511987650008")
    world.sim.forced_errors += [
        ForcedError(503, 2, "Service temporarily unavailable"),
        ForcedError(400, 130429, "Rate limit hit"),
        ForcedError(500, 1, "An unknown error occurred"),
    ]
    stream = await world.gw.stream()
    await stream.ready()
    message = await reply(world, conversation_id, text="persistent")
    sent = await stream.next(updated(message["id"], "sent", "failed"))
    assert sent["data"]["message"]["status"] == "sent"
    assert world.sim.forced_errors == []  # all three were answered, then the fourth try went
    assert [m.text for m in outgoing(world, "5511987650008")] == ["persistent"]  # exactly once


async def test_simulator_throughput_limit_answers_130429(world):
    sim = Simulator(world.sim.directory, SimulatorSettings(messages_per_second=2))
    sim.last_inbound[(world.business.phone_number_id, "5511987650009")] = sim.clock()
    body = {"messaging_product": "whatsapp", "to": "5511987650009", "type": "text", "text": {"body": "x"}}
    await sim.start()
    try:
        answers = [await sim.send_from_business(world.business, body) for _ in range(3)]
    finally:
        await sim.stop()
    assert [status for status, _ in answers] == [200, 200, 400]
    assert answers[2][1]["error"]["code"] == 130429


async def test_an_agent_replies_with_an_uploaded_image_and_the_phone_gets_the_media(world):
    conversation_id, _ = await open_conversation(world, "+5511987650011")
    stream = await world.gw.stream()
    await stream.ready()
    status, uploaded = await world.gw.upload(PNG, "receipt.png")
    assert status == 201 and uploaded["content_type"] == "image/png", uploaded
    message = await reply(world, conversation_id, text="Your receipt", attachments=[uploaded["id"]])
    await stream.next(updated(message["id"], "delivered"))
    [out] = outgoing(world, "5511987650011")
    assert out.type == "image" and out.text == "Your receipt"
    assert world.sim.media[out.extra["media_id"]].data == PNG  # uploaded to the Graph API first


async def test_image_with_caption_and_buttons_and_mark_read(world):
    conversation_id, inbound = await open_conversation(world, "+5511987650010")
    key = await world.gw.container.media.put(PNG)
    stream = await world.gw.stream()
    await stream.ready()
    outbox = world.gw.container.outbox
    image = await outbox.submit(
        Draft(
            conversation_id,
            text="Your label",
            attachments=(Attachment(content_type="image/png", filename="label.png", media_key=key),),
        )
    )
    await stream.next(updated(image.id, "delivered"))
    buttons = await outbox.submit(Draft(conversation_id, text="Did it arrive?", buttons=("Yes", "No")))
    await stream.next(updated(buttons.id, "delivered"))
    first, second = outgoing(world, "5511987650010")
    assert (
        first.type == "image"
        and first.text == "Your label"
        and world.sim.media[first.extra["media_id"]].data == PNG
    )
    assert second.type == "interactive" and [b["title"] for b in second.extra["buttons"]] == ["Yes", "No"]

    # The contact taps "Yes"; it arrives as a reply to that message.
    tap, _ = await world.contact_writes(
        "+5511987650010",
        "interactive",
        {"type": "button_reply", "button_reply": {"id": "Yes", "title": "Yes"}},
        context=second.wamid,
    )
    _, stored = await world.conversation_of(tap.wamid)
    assert (stored["content_type"], stored["text"]) == ("interactive", "Yes")

    # The business marks the contact's messages read: the phone shows blue ticks on them.
    await (await world.adapter()).mark_read(tap.wamid)
    assert world.sim.messages[inbound].status == "read" and world.sim.messages[tap.wamid].status == "read"


async def test_templates_are_listed_with_status_params_and_buttons(world):
    templates = {t.name: t for t in await (await world.adapter()).templates()}
    assert templates["order_update"].approved and templates["order_update"].param_count == 1
    assert templates["appointment_reminder"].param_count == 2
    assert not templates["draft_offer"].approved
    assert templates["spring_sale"].buttons == ("Shop now", "Stop promotions")
    assert templates["spring_sale"].category == "MARKETING"
