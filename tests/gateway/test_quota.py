"""Billable conversations, the monthly quota, tier alert mail and the hard block — with an injected clock,
a real SMTP sink and the REST API."""

from __future__ import annotations

import asyncio
import email.policy
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path

from inbox import tables as t
from inbox.model import PermanentChannelError, Reason
from tests.gateway.policy_support import (
    configure_channel,
    count_rows,
    quota,
    reply,
    seed_usage,
    send_to,
)
from tests.harness import ManualClock, start_gateway
from tests.services import free_port

PUBLIC = "https://inbox.example.com"


def _mail(envelope) -> Message:
    return message_from_bytes(envelope.content)


def _body(envelope) -> str:
    """The mail's plain-text part, as a mail client shows it."""
    part = message_from_bytes(envelope.content, policy=email.policy.default).get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def _metered(tmp_path: Path, clock: ManualClock, smtp_port: int | None = None, **kw):
    settings: dict = {"public_url": PUBLIC}
    if smtp_port is not None:
        settings["smtp_url"] = f"smtp://127.0.0.1:{smtp_port}"
    gw = await start_gateway(tmp_path, clock=clock, settings=settings, **kw)
    await configure_channel(gw, metered=True, service_window=False, consent=False)
    return gw


async def test_a_conversation_counts_once_for_24_hours(tmp_path: Path, clock: ManualClock):
    gw = await _metered(tmp_path, clock)
    try:
        loop = await gw.loopback()
        received = await loop.customer_writes("+15550300100", "hi")
        await reply(gw, received.conversation_id, "Hello!")
        await reply(gw, received.conversation_id, "Anything else?")
        clock.advance(hours=23, minutes=59, seconds=59)
        await reply(gw, received.conversation_id, "Still there?")
        assert (await quota(gw))["used"] == 1

        clock.advance(seconds=1)  # the billable conversation ran 24 h: the next message opens another
        await reply(gw, received.conversation_id, "Following up")
        await send_to(gw, "+15550300200", "Your invoice is ready")
        q = await quota(gw)
        assert q["used"] == 3 and q["limit"] == 1000 and q["tier"] is None and q["banner"] == "none"

        code, page = await gw.api("GET", "/billing/conversations")
        assert code == 200
        assert [(c["category"], c["period"]) for c in page["items"]] == [
            ("user_initiated", "2026-03"),
            ("business_initiated", "2026-03"),
            ("business_initiated", "2026-03"),
        ]
        _, other_month = await gw.api("GET", "/billing/conversations?period=2026-02")
        assert other_month["items"] == []
        _, agent_token = await gw.user("agent3@example.com", inbox_ids=[1])
        assert (await gw.api("GET", "/billing/conversations", token=agent_token))[0] == 403
        assert (await gw.api("GET", "/quota", token=agent_token))[0] == 200
    finally:
        await gw.close()


async def test_70_percent_of_1000_plus_a_pack_alerts_billing_and_super_admins_once(
    tmp_path: Path, clock: ManualClock, smtp_sink
):
    gw = await _metered(tmp_path, clock, smtp_sink.port)
    try:
        await gw.user("billing@example.com", role="billing_admin")
        await gw.user("boss@example.com", role="super_admin")
        await gw.user("agent4@example.com", role="agent", inbox_ids=[1])
        _, admin_token = await gw.user("admin4@example.com", role="admin")
        _, agent_token = await gw.user("agent5@example.com", role="agent", inbox_ids=[1])

        assert (await gw.api("POST", "/billing/packs", json_body={"count": 1}, token=agent_token))[0] == 403
        assert (await gw.api("POST", "/billing/packs", json_body={"count": 1}, token=admin_token))[0] == 403
        code, bought = await gw.api("POST", "/billing/packs", json_body={"count": 1})
        assert code == 200 and bought["limit"] == 2000 and bought["packs"] == 1

        await seed_usage(gw, 1398)
        await send_to(gw, "+15550301399", "one")
        q = await quota(gw)
        assert q["used"] == 1399 and q["tier"] is None and q["banner"] == "none"
        assert await count_rows(gw, t.OutgoingMail) == 0

        _, agent_stream_token = await gw.user("agent6@example.com", role="agent", inbox_ids=[])
        stream = await gw.stream(token=agent_stream_token)  # every user sees the banner, inbox or not
        await stream.ready()
        await send_to(gw, "+15550301400", "two")  # 1,400 of 2,000 is exactly 70 %
        event = await stream.next(lambda e: e["type"] == "quota.updated")
        assert (event["data"]["tier"], event["data"]["banner"], event["data"]["used"]) == (70, "notice", 1400)
        q = await quota(gw)
        assert (q["used"], q["percent"], q["tier"], q["banner"], q["blocked"]) == (
            1400,
            70.0,
            70,
            "notice",
            False,
        )

        (envelope,) = await smtp_sink.wait_for(1)
        mail = _mail(envelope)
        assert sorted(envelope.rcpt_tos) == [
            "admin@demo.switchboard.test",
            "billing@example.com",
            "boss@example.com",
        ]
        assert "70%" in mail["Subject"] and "Demo Company" in mail["Subject"]
        body = _body(envelope)
        assert "Usage: 1,400" in body and "Limit: 2,000" in body
        assert "Period ends: 2026-04-01 00:00 UTC" in body
        assert f"{PUBLIC}/#/billing" in body

        for n in range(3):  # more conversations inside the same tier: no more mail
            await send_to(gw, f"+1555030150{n}", "more")
        await gw.container.mail.deliver_due()
        assert len(smtp_sink.messages) == 1 and await count_rows(gw, t.OutgoingMail) == 1
    finally:
        await gw.close()


async def test_an_account_in_portuguese_gets_its_alert_mail_in_portuguese(
    tmp_path: Path, clock: ManualClock, smtp_sink
):
    gw = await _metered(tmp_path, clock, smtp_sink.port)
    try:
        code, _ = await gw.api("PATCH", "/account", json_body={"language": "pt-BR"})
        assert code == 200
        await seed_usage(gw, 999)
        await send_to(gw, "+15550309999", "x")  # 1,000 of 1,000: the 100 % tier
        (envelope,) = await smtp_sink.wait_for(1)
        subject = message_from_bytes(envelope.content, policy=email.policy.default)["Subject"]
        assert subject == (
            "[Switchboard] Demo Company: 100% da cota de conversas de 2026-03 usada"
            " - novas conversas estão bloqueadas"
        )
        body = _body(envelope)
        assert "Sua conta Demo Company usou 1.000 de 1.000 conversas no período 2026-03" in body
        assert "Uso: 1.000" in body and "Limite: 1.000" in body
        assert "Fim do período: 2026-04-01 00:00 UTC" in body
        assert f"Compre pacotes de 1.000 conversas: {PUBLIC}/#/billing" in body
        assert "Usage" not in body
    finally:
        await gw.close()


async def test_odd_limit_crosses_70_percent_at_the_exact_conversation(
    tmp_path: Path, clock: ManualClock, smtp_sink
):
    gw = await _metered(tmp_path, clock, smtp_sink.port)
    try:
        code, _ = await gw.api("PATCH", "/account", json_body={"included_conversations": 333})
        assert code == 200
        await gw.api("POST", "/billing/packs", json_body={"count": 1})  # limit 1,333: 70 % is 933.1
        await seed_usage(gw, 932)
        await send_to(gw, "+15550302933", "x")
        assert (await quota(gw))["tier"] is None
        await send_to(gw, "+15550302934", "x")
        assert (await quota(gw))["tier"] == 70
        (envelope,) = await smtp_sink.wait_for(1)
        assert "Usage: 934" in _body(envelope)
    finally:
        await gw.close()


async def test_one_change_across_several_tiers_sends_one_mail_naming_the_highest(
    tmp_path: Path, clock: ManualClock, smtp_sink
):
    gw = await _metered(tmp_path, clock, smtp_sink.port)
    try:
        await gw.api("PATCH", "/account", json_body={"included_conversations": 10})
        await seed_usage(gw, 6)
        await send_to(gw, "+15550303001", "x")  # 7/10: 70 %
        await send_to(gw, "+15550303002", "x")  # 8/10: 80 %
        await gw.api("PATCH", "/account", json_body={"included_conversations": 9})  # 8/9 = 89 %
        await send_to(gw, "+15550303003", "x")  # 9/9: 90, 95 and 100 % at once
        mails = await smtp_sink.wait_for(3)
        subjects = [_mail(e)["Subject"] for e in mails]
        assert ["70%" in subjects[0], "80%" in subjects[1], "100%" in subjects[2]] == [True, True, True]
        assert "95%" not in subjects[2] and "blocked" in subjects[2]
        assert await count_rows(gw, t.QuotaAlert) == 5 and await count_rows(gw, t.OutgoingMail) == 3
    finally:
        await gw.close()


async def test_at_100_percent_new_conversations_are_refused_until_a_pack_is_bought(
    tmp_path: Path, clock: ManualClock
):
    gw = await _metered(tmp_path, clock)
    try:
        loop = await gw.loopback()
        open_conv = await loop.customer_writes("+15550304000", "hi")
        await reply(gw, open_conv.conversation_id, "Hello")  # counted while there was room
        await seed_usage(gw, 1000)

        refused = await send_to(gw, "+15550304001", "Your appointment is tomorrow")
        assert refused["status"] == "failed" and refused["reason"] == "quota_exhausted"
        assert refused["text"] == "Your appointment is tomorrow"
        q = await quota(gw)
        assert q["blocked"] and q["banner"] == "blocked" and q["used"] == 1000

        # Inside a conversation already counted, messages still go; inbound still arrives.
        assert (await reply(gw, open_conv.conversation_id, "Still here for you"))["status"] == "queued"
        inbound = await loop.customer_writes("+15550304002", "Hello? Anyone?")
        _, page = await gw.api("GET", f"/conversations/{inbound.conversation_id}/messages")
        assert [m["text"] for m in page["items"]] == ["Hello? Anyone?"]
        assert (await reply(gw, inbound.conversation_id, "Hi!"))["reason"] == "quota_exhausted"

        code, bought = await gw.api("POST", "/billing/packs", json_body={"count": 1})
        assert code == 200 and not bought["blocked"] and bought["limit"] == 2000
        again = await send_to(gw, "+15550304001", refused["text"])  # the kept text, resent
        assert again["status"] == "queued"
        assert (await quota(gw))["used"] == 1001
    finally:
        await gw.close()


async def test_period_rolls_over_at_midnight_utc_on_the_first_and_packs_renew(tmp_path: Path, smtp_sink):
    clock = ManualClock(datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC))
    gw = await _metered(tmp_path, clock, smtp_sink.port)
    try:
        await gw.api("POST", "/billing/packs", json_body={"count": 2})
        await seed_usage(gw, 2999)
        await send_to(gw, "+15550305000", "last one in March")  # 3,000 of 3,000
        assert (await send_to(gw, "+15550305001", "blocked"))["reason"] == "quota_exhausted"
        await smtp_sink.wait_for(1)

        clock.set(datetime(2026, 4, 1, 0, 0, 0, tzinfo=UTC))
        q = await quota(gw)
        assert q["period"] == "2026-04" and q["used"] == 0 and q["packs"] == 2 and q["limit"] == 3000
        assert q["period_start"].startswith("2026-04-01T00:00:00") and q["period_end"].startswith(
            "2026-05-01"
        )
        assert (await send_to(gw, "+15550305001", "first one in April"))["status"] == "queued"
        assert (await quota(gw))["used"] == 1

        # A cancelled pack stays until the period's end, then does not renew.
        code, cancelled = await gw.api("POST", "/billing/packs/cancel", json_body={"count": 1})
        assert code == 200 and (cancelled["packs"], cancelled["renewing_packs"], cancelled["limit"]) == (
            2,
            1,
            3000,
        )
        clock.set(datetime(2026, 5, 1, 0, 0, 0, tzinfo=UTC))
        may = await quota(gw)
        assert (may["packs"], may["limit"]) == (1, 2000)
        clock.set(datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC))

        code, march = await gw.api("GET", "/billing/conversations?period=2026-03")
        assert len(march["items"]) == 1
        # Tiers fire again in the new period.
        await seed_usage(gw, 2099)
        await send_to(gw, "+15550305002", "x")
        mails = await smtp_sink.wait_for(2)
        assert "2026-04" in _mail(mails[1])["Subject"] and "70%" in _mail(mails[1])["Subject"]
    finally:
        await gw.close()


async def test_a_conversation_whose_first_message_fails_permanently_is_released(
    tmp_path: Path, clock: ManualClock, database_url: str | None
):
    gw = await _metered(tmp_path, clock, database_url=database_url)
    try:
        loop = await gw.loopback()
        stream = await gw.stream()
        await stream.ready()
        loop.failures = [PermanentChannelError(Reason.INVALID_RECIPIENT, "no such number")]
        doomed = await send_to(gw, "+15550306000", "hello")
        assert doomed["status"] == "queued"
        await stream.next(
            lambda e: e["type"] == "message.updated" and e["data"]["message"]["id"] == doomed["id"]
        )
        assert (await quota(gw))["used"] == 0
        _, page = await gw.api("GET", "/billing/conversations")
        assert page["items"][0]["released_at"] is not None

        # Once something else went out in the conversation, a later failure releases nothing.
        received = await loop.customer_writes("+15550306100", "hi")
        first = await reply(gw, received.conversation_id, "first")
        await loop.next_sent()
        await stream.next(
            lambda e: (
                e["type"] == "message.updated"
                and e["data"]["message"]["id"] == first["id"]
                and e["data"]["message"]["status"] == "sent"
            )
        )
        loop.failures = [PermanentChannelError(Reason.INVALID_RECIPIENT, "blocked")]
        second = await reply(gw, received.conversation_id, "second")
        await stream.next(
            lambda e: e["type"] == "message.updated" and e["data"]["message"]["id"] == second["id"]
        )
        assert (await quota(gw))["used"] == 1
    finally:
        await gw.close()


async def test_50_concurrent_sends_at_limit_minus_one_open_exactly_one_conversation(
    tmp_path: Path, clock: ManualClock, smtp_sink, database_url: str | None
):
    gw = await _metered(tmp_path, clock, smtp_sink.port, database_url=database_url)
    try:
        await seed_usage(gw, 999)
        results = await asyncio.gather(*(send_to(gw, f"+1555031{n:04d}", "Hello!") for n in range(50)))
        statuses = sorted((m["status"], m["reason"]) for m in results)
        assert statuses.count(("queued", None)) == 1
        assert statuses.count(("failed", "quota_exhausted")) == 49
        q = await quota(gw)
        assert q["used"] == 1000 and q["blocked"]
        _, page = await gw.api("GET", "/billing/conversations")
        assert len(page["items"]) == 1
        (envelope,) = await smtp_sink.wait_for(1)  # 70..100 crossed in one change: one mail, at 100 %
        assert "100%" in _mail(envelope)["Subject"]
        assert await count_rows(gw, t.OutgoingMail) == 1 and await count_rows(gw, t.QuotaAlert) == 5
    finally:
        await gw.close()


async def test_alert_mail_survives_a_relay_outage_and_a_restart_and_is_sent_once(
    tmp_path: Path, clock: ManualClock, smtp_sink
):
    dead_port = free_port()  # nothing listens here: the relay is down
    gw = await _metered(tmp_path, clock, dead_port)
    try:
        await gw.api("PATCH", "/account", json_body={"included_conversations": 10})
        await seed_usage(gw, 6)
        await gw.container.mail.stop()  # deliver by hand below: no race with the background sender
        await send_to(gw, "+15550307000", "x")  # 70 %
        assert await gw.container.mail.deliver_due() == 0
        async with gw.container.db.read() as session:
            row = await session.get(t.OutgoingMail, 1)
        assert row is not None and row.status == "pending" and row.attempts >= 1
        assert "Connect" in (row.last_error or "")
    finally:
        await gw.close()

    clock.advance(hours=2)  # past the back-off
    gw2 = await _metered(tmp_path, clock, smtp_sink.port)  # same data dir, relay back
    try:
        (envelope,) = await smtp_sink.wait_for(1)
        assert "70%" in _mail(envelope)["Subject"]
        await gw2.container.mail.deliver_due()
        await send_to(gw2, "+15550307001", "x")  # 8/10: 80 %, the 70 % tier does not fire again
        mails = await smtp_sink.wait_for(2)
        assert ["70%" in _mail(mails[0])["Subject"], "80%" in _mail(mails[1])["Subject"]] == [True, True]
        await gw2.container.mail.deliver_due()
        assert len(smtp_sink.messages) == 2
    finally:
        await gw2.close()
