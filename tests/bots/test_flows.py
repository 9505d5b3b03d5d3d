"""Bot flows through a running gateway: a web chat visitor walks a flow with buttons and is handed to
an agent; numbered text where a channel has no buttons; "human" at any step; FAQ answers and
hand-offs; refused replies recorded on the run; a restart continues a run; flows validated with 422s."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from inbox import tables as t
from inbox.model import Reason
from inbox.outbox import Refusal, SendContext
from tests.harness import jobs_done, start_gateway
from tests.routing.support import channel_of_kind, conversation, create, online_agent, texts

INTAKE = """
name: Web chat intake
start: welcome
states:
  welcome:
    say: Hi! What brings you here?
    buttons:
      - {label: Order status, next: ask_email}
      - {label: Something else, next: to_people}
  ask_email:
    say: What is the email address on your order?
    capture:
      attribute: email
      validate: email
      next: ask_urgency
      invalid: Hmm, that is not an email address.
  ask_urgency:
    say: "Thanks, {email}. How urgent is it?"
    save_as: urgency
    buttons:
      - {label: Urgent, next: to_people}
      - {label: It can wait, next: bye}
  to_people:
    handoff: {message: Connecting you with an agent now.}
  bye: {say: We will email you soon. Bye!, end: true, resolve: true}
"""


async def _bot_for_kind(gw, kind: str, source: str = INTAKE, bot_kind: str = "flow") -> dict:
    bot = await create(gw, "/bots", {"name": "Intake", "kind": bot_kind, "source": source})
    await create(
        gw,
        "/rules",
        {
            "name": f"{kind} visitors meet the bot",
            "triggers": ["conversation_created"],
            "conditions": [{"type": "channel_kind", "kinds": [kind]}],
            "actions": [{"type": "start_bot", "flow_id": bot["id"]}],
        },
    )
    return bot


async def test_web_chat_visitor_walks_a_three_step_flow_and_is_handed_to_an_agent(
    tmp_path: Path, database_url: str | None
):
    gw = await start_gateway(tmp_path, database_url=database_url)
    try:
        await _web_chat_flow(gw)
    finally:
        await gw.close()


async def _web_chat_flow(gw) -> None:
    agent, _ = await online_agent(gw, "web-agent@demo.test")
    await create(gw, "/assignment-policies", {"inbox_id": 1})
    bot = await _bot_for_kind(gw, "webchat")
    webchat = await channel_of_kind(gw, "webchat")
    stream = await gw.stream()
    await stream.ready()

    first = await webchat.customer_writes("visitor-7f3a", "hello")
    conv_id = first.conversation_id
    welcome, _ = await webchat.next_sent()
    assert welcome.text == "Hi! What brings you here?"
    assert welcome.buttons == ("Order status", "Something else")  # web chat renders them natively
    assert (await conversation(gw, conv_id))["assignee_id"] is None  # the bot has it, not a person

    await webchat.customer_writes("visitor-7f3a", "order STATUS")
    ask, _ = await webchat.next_sent()
    assert ask.text == "What is the email address on your order?" and ask.buttons == ()
    await webchat.customer_writes("visitor-7f3a", "my email is secret")
    retry, _ = await webchat.next_sent()
    assert retry.text == "Hmm, that is not an email address."
    await webchat.customer_writes("visitor-7f3a", " Jo@Example.COM ")
    urgency, _ = await webchat.next_sent()
    assert urgency.text == "Thanks, jo@example.com. How urgent is it?"
    assert urgency.buttons == ("Urgent", "It can wait")

    await webchat.customer_writes("visitor-7f3a", "Urgent")
    bye, _ = await webchat.next_sent()
    assert bye.text == "Connecting you with an agent now."
    handoff = await stream.next(lambda e: e["type"] == "conversation.handoff")
    assert handoff["conversation_id"] == conv_id and handoff["data"]["flow_id"] == bot["id"]
    conv = await conversation(gw, conv_id)
    assert conv["assignee_id"] == agent and conv["status"] == "open"
    status, contact = await gw.api("GET", f"/contacts/{conv['contact_id']}")
    assert contact["attributes"] == {"email": "jo@example.com", "urgency": "Urgent"}

    # The bot no longer answers; the agent sees the whole transcript.
    await webchat.customer_writes("visitor-7f3a", "hello? anyone?")
    await gw.container.jobs.join()
    assert webchat.sent.empty()
    transcript = [x for x in await texts(gw, conv_id) if not x[0].startswith("activity")]
    assert transcript == [
        ("incoming/contact", "hello"),
        ("outgoing/bot", "Hi! What brings you here?"),
        ("incoming/contact", "order STATUS"),
        ("outgoing/bot", "What is the email address on your order?"),
        ("incoming/contact", "my email is secret"),
        ("outgoing/bot", "Hmm, that is not an email address."),
        ("incoming/contact", " Jo@Example.COM "),
        ("outgoing/bot", "Thanks, jo@example.com. How urgent is it?"),
        ("incoming/contact", "Urgent"),
        ("outgoing/bot", "Connecting you with an agent now."),
        ("incoming/contact", "hello? anyone?"),
    ]

    # A second visitor finishes without a person: counted as resolved without a human.
    other = await webchat.customer_writes("visitor-99", "hi")
    for answer in ("1", "ann@example.org", "It can wait"):
        await webchat.next_sent()
        await webchat.customer_writes("visitor-99", answer)
    done, _ = await webchat.next_sent()
    assert done.text == "We will email you soon. Bye!"
    await gw.container.jobs.join()
    assert (await conversation(gw, other.conversation_id))["status"] == "resolved"

    status, stats = await gw.api("GET", f"/bots/{bot['id']}/stats")
    assert status == 200
    assert stats == {
        "flow_id": bot["id"],
        "runs": 2,
        "active": 0,
        "completed": 1,
        "handed_off": 1,
        "resolved_without_human": 1,
        "refused_sends": 0,
    }


async def test_numbered_buttons_where_the_channel_has_none_and_human_at_any_step(gateway):
    gw = gateway
    await _bot_for_kind(gw, "loopback")
    loop = await gw.loopback()
    got = await loop.customer_writes("+15550600001", "hi")
    welcome, _ = await loop.next_sent()
    assert welcome.buttons == ()
    assert welcome.text == (
        "Hi! What brings you here?\n\n1. Order status\n2. Something else\n\n"
        "Reply with the number of your choice."
    )
    await loop.customer_writes("+15550600001", "1")
    ask, _ = await loop.next_sent()
    assert ask.text == "What is the email address on your order?"
    await loop.customer_writes("+15550600001", "can I talk to a HUMAN please")
    handed, _ = await loop.next_sent()
    assert handed.text == "Connecting you with a person. Please hold on."
    async with gw.container.db.read() as session:
        run = await session.scalar(select(t.BotRun).where(t.BotRun.conversation_id == got.conversation_id))
    assert run is not None and run.status == "handed_off" and run.outcome == "the contact asked for a person"


FAQ = {
    "greeting": None,
    "entries": [
        {"question": "How much does shipping cost?", "answer": "Shipping is 4.90 EUR, free from 50 EUR."},
        {
            "question": "What are your opening hours?",
            "answer": "We are open Monday to Friday, 9:00 to 17:00.",
            "keywords": ["open", "close", "hours"],
        },
    ],
}


async def test_faq_bot_answers_what_it_knows_and_hands_off_when_unsure(gateway):
    gw = gateway
    bot = await _bot_for_kind(gw, "telegram", source=json.dumps(FAQ), bot_kind="faq")
    telegram = await channel_of_kind(gw, "telegram")
    await telegram.customer_writes("4242", "How much is shipping to Lisbon?")  # the opening question counts
    answer, _ = await telegram.next_sent()
    # One message per step, so the answer and its follow-up cannot arrive out of order.
    assert answer.text == "Shipping is 4.90 EUR, free from 50 EUR.\n\nAnything else I can help with?"
    await telegram.customer_writes("4242", "when do you close on fridays?")
    answer, _ = await telegram.next_sent()
    assert (answer.text or "").startswith("We are open Monday to Friday, 9:00 to 17:00.")
    await telegram.customer_writes("4242", "Can I pay with bitcoin?")
    unsure, _ = await telegram.next_sent()
    assert unsure.text == "I am not sure about that one. Let me get a person to help you."
    status, stats = await gw.api("GET", f"/bots/{bot['id']}/stats")
    assert stats["runs"] == 1 and stats["handed_off"] == 1


class RefuseBotReplies:
    """An outbound policy standing for the quota gate at 100 %: every bot reply is refused."""

    async def check(self, session, ctx: SendContext) -> Refusal | None:
        if ctx.draft.origin == "bot":
            return Refusal(Reason.QUOTA_EXHAUSTED, "monthly conversation quota used up")
        return None


async def test_a_refused_bot_reply_is_recorded_on_the_run(tmp_path: Path):
    gw = await start_gateway(tmp_path, customize=lambda c: c.outbox.policies.append(RefuseBotReplies()))
    try:
        bot = await _bot_for_kind(gw, "loopback")
        loop = await gw.loopback()
        got = await loop.customer_writes("+15550700001", "hi")
        await jobs_done(gw)
        assert loop.sent.empty()  # nothing reached the channel
        status, page = await gw.api("GET", f"/conversations/{got.conversation_id}/messages")
        refused = [m for m in page["items"] if m["origin"] == "bot"]
        assert [(m["status"], m["reason"]) for m in refused] == [("failed", "quota_exhausted")]
        status, runs = await gw.api("GET", f"/bots/{bot['id']}/runs")
        assert runs["items"][0]["refusals"] == [
            {
                "message_id": refused[0]["id"],
                "reason": "quota_exhausted",
                "detail": "monthly conversation quota used up",
            }
        ]
        status, stats = await gw.api("GET", f"/bots/{bot['id']}/stats")
        assert stats["refused_sends"] == 1
    finally:
        await gw.close()


async def test_a_bot_run_continues_after_a_restart(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    await _bot_for_kind(gw, "loopback")
    await gw.container.jobs.stop()  # the process "dies" before the bot's step runs
    loop = await gw.loopback()
    await loop.customer_writes("+15550800001", "hi")
    gw.container.jobs._handlers.clear()
    await gw.close()

    gw2 = await start_gateway(tmp_path)
    try:
        loop2 = await gw2.loopback()
        welcome, _ = await loop2.next_sent()
        assert (welcome.text or "").startswith("Hi! What brings you here?")
        await loop2.customer_writes("+15550800001", "2")
        handed, _ = await loop2.next_sent()
        assert handed.text == "Connecting you with an agent now."
    finally:
        await gw2.close()


async def test_flows_are_validated_with_errors_that_name_the_field(gateway):
    gw = gateway
    broken = INTAKE.replace("next: bye", "next: farewell")
    status, err = await gw.api("POST", "/bots", json_body={"name": "x", "source": broken})
    assert status == 422
    assert {
        "field": "definition.states.ask_urgency.buttons.1.next",
        "problem": "no state named 'farewell'",
    } in err["error"]["details"]
    status, err = await gw.api("POST", "/bots", json_body={"name": "x", "source": "states: [unclosed"})
    assert status == 422 and err["error"]["details"][0]["field"] == "source"
    status, err = await gw.api(
        "POST",
        "/bots",
        json_body={
            "name": "x",
            "definition": {"start": "a", "states": {"a": {"say": "hi", "end": True, "next": "a"}}},
        },
    )
    assert status == 422 and err["error"]["details"][0]["field"] == "definition.states.a"
    status, err = await gw.api(
        "POST", "/bots", json_body={"name": "x", "kind": "faq", "definition": {"entries": []}}
    )
    assert status == 422 and err["error"]["details"][0]["field"] == "definition.entries"
    _, token = await gw.user("bot-agent@demo.test", inbox_ids=[1])
    status, _ = await gw.api("POST", "/bots", token=token, json_body={"name": "x", "source": INTAKE})
    assert status == 403

    bot = await create(gw, "/bots", {"name": "ok", "source": INTAKE})
    status, patched = await gw.api("PATCH", f"/bots/{bot['id']}", json_body={"enabled": False})
    assert status == 200 and patched["enabled"] is False
    # A disabled flow does not start: the rule's firing says why.
    await create(
        gw,
        "/rules",
        {"name": "bot", "actions": [{"type": "start_bot", "flow_id": bot["id"]}]},
    )
    loop = await gw.loopback()
    got = await loop.customer_writes("+15550900001", "hi")
    status, firings = await gw.api("GET", f"/rule-firings?conversation_id={got.conversation_id}")
    assert firings["items"][0]["actions"][0]["result"] == "skipped"


async def test_deleting_a_flow_gives_its_conversations_to_people(gateway):
    gw = gateway
    agent, _ = await online_agent(gw, "after-bot@demo.test")
    await create(gw, "/assignment-policies", {"inbox_id": 1})
    bot = await _bot_for_kind(gw, "loopback")
    loop = await gw.loopback()
    got = await loop.customer_writes("+15550950001", "hi")
    await loop.next_sent()
    assert (await conversation(gw, got.conversation_id))["assignee_id"] is None
    status, _ = await gw.api("DELETE", f"/bots/{bot['id']}")
    assert status == 204
    assert (await conversation(gw, got.conversation_id))["assignee_id"] == agent
    await loop.customer_writes("+15550950001", "1")
    await gw.container.jobs.join()
    assert loop.sent.empty()
