"""A Monday's worth of known timings, driven through a running gateway with an injected clock.

On the demo (clock 2026-03-10 12:00 UTC, a Tuesday; the account in São Paulo, UTC-3):
- conversation A (the demo's, opened 12:00): Alex answers at 12:05 (first response 5 min), the contact
  writes at 12:30 and Alex answers at 12:40 (next response 10 min); resolved at 13:00, reopened by the
  contact at 13:10, resolved again at 13:30 (one resolution of 90 min, one reopen);
- conversation B (opened 12:05, label ``vip``): Ada answers at 12:20 (first response 15 min);
- two contacts on a Telegram channel meet the "Triage" bot: it resolves one and hands the other off;
- a contact writes at 01:00 UTC on 2026-03-11, still 2026-03-10 in São Paulo.
Business hours of the inbox: Tuesdays 12:10-18:00 UTC, so in business time A waited 0 s and B 600 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.api.admin import issue_token
from gateway.demo import AGENT_EMAIL
from tests.harness import Gateway, ManualClock, jobs_done
from tests.routing.support import channel_of_kind, create

TRIAGE = """
name: Triage
start: welcome
states:
  welcome:
    say: Hi! Did the help page answer your question?
    buttons:
      - {label: Yes thanks, next: bye}
      - {label: Talk to a person, next: to_people}
  to_people:
    handoff: {message: Connecting you with a person now.}
  bye: {say: Glad to help. Bye!, end: true, resolve: true}
"""
ADA, ALEX = 1, 2
START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@dataclass
class Scenario:
    alex_token: str
    flow_id: int
    conversation_a: int
    conversation_b: int


async def agent_token(gw: Gateway) -> str:
    """An API token for the demo agent Alex (the way ``switchboard user create`` issues one)."""
    async with gw.container.db.write() as session:
        return await issue_token(session, ALEX, gw.clock())


async def reply(gw: Gateway, conversation_id: int, text: str, token: str | None = None) -> None:
    status, body = await gw.api(
        "POST", f"/conversations/{conversation_id}/messages", token=token, json_body={"text": text}
    )
    assert status == 201, body


async def set_status(gw: Gateway, conversation_id: int, status_: str, token: str | None = None) -> None:
    status, body = await gw.api(
        "PATCH", f"/conversations/{conversation_id}", token=token, json_body={"status": status_}
    )
    assert status == 200, body


async def drive(gw: Gateway, clock: ManualClock) -> Scenario:
    """Play the scenario above; ``clock`` stands at START and the demo is seeded."""
    alex_token = await agent_token(gw)
    status, body = await gw.api("PATCH", "/account", json_body={"timezone": "America/Sao_Paulo"})
    assert status == 200, body
    hours = {"timezone": "UTC", "days": {"tue": ["12:10-18:00"]}}
    status, body = await gw.api("PUT", "/inboxes/1/business-hours", json_body=hours)
    assert status == 200, body
    bot = await create(gw, "/bots", {"name": "Triage", "kind": "flow", "source": TRIAGE})
    await create(
        gw,
        "/rules",
        {
            "name": "Telegram contacts meet the bot",
            "triggers": ["conversation_created"],
            "conditions": [{"type": "channel_kind", "kinds": ["telegram"]}],
            "actions": [{"type": "start_bot", "flow_id": bot["id"]}],
        },
    )
    loop = await gw.loopback()
    a = 1  # the demo's conversation, opened at 12:00

    clock.advance(minutes=5)  # 12:05
    await reply(gw, a, "Let me look at order #1234.", alex_token)
    b = (await loop.customer_writes("+15550199999", "Where is my refund?", name="Bruno")).conversation_id
    status, body = await gw.api("PATCH", f"/conversations/{b}", json_body={"labels": ["vip"]})
    assert status == 200, body

    clock.advance(minutes=15)  # 12:20
    await reply(gw, b, "The refund left yesterday.")

    clock.advance(minutes=10)  # 12:30
    await loop.customer_writes("+15550123456", "Any news?", name="Maria Demo")
    clock.advance(minutes=10)  # 12:40
    await reply(gw, a, "It ships today.", alex_token)
    clock.advance(minutes=20)  # 13:00
    await set_status(gw, a, "resolved", alex_token)
    clock.advance(minutes=10)  # 13:10: the contact writes again: reopened
    await loop.customer_writes("+15550123456", "It has not shipped.", name="Maria Demo")
    clock.advance(minutes=20)  # 13:30
    await set_status(gw, a, "resolved", alex_token)

    telegram = await channel_of_kind(gw, "telegram")
    await telegram.customer_writes("tg-carla", "hi", name="Carla")
    welcome, _ = await telegram.next_sent()
    assert welcome.text is not None and welcome.text.startswith("Hi! Did the help page")
    await telegram.customer_writes("tg-carla", "Yes thanks", name="Carla")
    bye, _ = await telegram.next_sent()
    assert bye.text == "Glad to help. Bye!"
    await telegram.customer_writes("tg-dan", "hi", name="Dan")
    await telegram.next_sent()
    await telegram.customer_writes("tg-dan", "Talk to a person", name="Dan")
    handed, _ = await telegram.next_sent()
    assert handed.text == "Connecting you with a person now."
    await jobs_done(gw)

    clock.set(datetime(2026, 3, 11, 1, 0, tzinfo=UTC))  # 22:00 on the 10th in São Paulo
    await loop.customer_writes("+15550177777", "Late question", name="Eve")
    await jobs_done(gw)
    return Scenario(alex_token, bot["id"], a, b)


__all__ = ["ADA", "AGENT_EMAIL", "ALEX", "START", "Scenario", "drive"]
