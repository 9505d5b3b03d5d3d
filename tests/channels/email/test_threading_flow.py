"""Threading that holds (Outlook, changed subjects, newsletters, forwards), and mail that must never
open a conversation or wake a bot (auto-replies, bounces) or reach the inbox (filters)."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from pathlib import Path

from tests.channels.email.conftest import SUPPORT, dsn, mail, parsed, smtp_send
from tests.harness import Gateway, ManualClock, start_gateway


class Thread:
    """Ann's conversation after the agent replied once: ``reply`` is the mail she received."""

    def __init__(self, gw: Gateway, conv_id: int, reply: EmailMessage) -> None:
        self.gw, self.conv_id, self.reply = gw, conv_id, reply


async def start(tmp_path: Path, smtp_sink, clock=None) -> Gateway:
    return await start_gateway(
        tmp_path,
        clock=clock,
        settings={"smtp_url": f"smtp://127.0.0.1:{smtp_sink.port}", "mail_domain": "mail.test"},
    )


async def send(gw: Gateway, raw: bytes, sender: str = "ann@example.org", to: str = SUPPORT) -> None:
    await smtp_send(gw.container.smtp.port, raw, sender, [to])


async def conversations(gw: Gateway, query: str = "status=open") -> list[dict]:
    status, page = await gw.api("GET", f"/conversations?{query}")
    assert status == 200
    return [c for c in page["items"] if c["channel_id"] != 1]  # not the demo's loopback conversation


async def texts(gw: Gateway, conv_id: int) -> list[str]:
    _, messages = await gw.api("GET", f"/conversations/{conv_id}/messages")
    return [m["text"] for m in messages["items"]]


async def ann_thread(gw: Gateway, smtp_sink) -> Thread:
    await send(
        gw, mail("Order 1234", "Where is it?", sender="Ann <ann@example.org>", msgid="<a1@example.org>")
    )
    [conv] = await conversations(gw)
    stream = await gw.stream()
    await stream.ready()
    await gw.api("POST", f"/conversations/{conv['id']}/messages", json_body={"text": "Checking."})
    await stream.next(lambda e: e["type"] == "message.updated" and e["data"]["message"]["status"] == "sent")
    reply = parsed((await smtp_sink.wait_for(1))[-1])
    return Thread(gw, conv["id"], reply)


async def test_outlook_reply_with_rewritten_in_reply_to_joins(tmp_path: Path, smtp_sink):
    gw = await start(tmp_path, smtp_sink)
    try:
        th = await ann_thread(gw, smtp_sink)
        ours = th.reply["Message-ID"]
        # Outlook: its own id in In-Reply-To, ours only deep in References, subject re-prefixed.
        await send(
            gw,
            mail(
                "RE: AW: something else entirely",
                "Still nothing.",
                sender="Ann <ann@example.org>",
                in_reply_to="<AM0PR01MB1234@AM0PR01MB.eurprd01.prod.outlook.com>",
                references=f"{ours} <AM0PR01MB1234@AM0PR01MB.eurprd01.prod.outlook.com>",
                headers={"Thread-Index": "AQHaBcdEfGh1234=="},
            ),
        )
        # Outlook again, now with no References at all, answering to the Reply-To token address.
        await send(
            gw,
            mail(
                "RE: ???",
                "Hello??",
                sender="Ann <ann@example.org>",
                in_reply_to="<rewritten@outlook.com>",
                to=th.reply["Reply-To"],
            ),
            to=th.reply["Reply-To"],
        )
        assert await texts(gw, th.conv_id) == ["Where is it?", "Checking.", "Still nothing.", "Hello??"]
        assert len(await conversations(gw)) == 1
    finally:
        await gw.close()


async def test_reply_with_a_changed_subject_joins(tmp_path: Path, smtp_sink):
    gw = await start(tmp_path, smtp_sink)
    try:
        th = await ann_thread(gw, smtp_sink)
        await send(
            gw, mail("Invoice question instead", "Also: the invoice.", in_reply_to=th.reply["Message-ID"])
        )
        assert await texts(gw, th.conv_id) == ["Where is it?", "Checking.", "Also: the invoice."]
    finally:
        await gw.close()


async def test_subject_and_contact_join_only_within_the_time_limit(tmp_path: Path, smtp_sink):
    clock = ManualClock()
    gw = await start(tmp_path, smtp_sink, clock=clock)
    try:
        await send(gw, mail("Order 1234", "first", msgid="<s1@example.org>"))
        [conv] = await conversations(gw)
        # A client that dropped every threading header: same contact, same subject → same conversation.
        clock.advance(hours=20)
        await send(gw, mail("Re: Order 1234", "second"))
        # Someone else with the same subject is not Ann.
        await send(
            gw, mail("Re: Order 1234", "not ann", sender="carl@example.org"), sender="carl@example.org"
        )
        assert await texts(gw, conv["id"]) == ["first", "second"]
        clock.advance(days=4)
        await send(gw, mail("Re: Order 1234", "much later"))
        assert await texts(gw, conv["id"]) == ["first", "second"]
        assert len(await conversations(gw)) == 3
    finally:
        await gw.close()


async def test_two_contacts_answering_the_same_newsletter_get_two_conversations(tmp_path: Path, smtp_sink):
    gw = await start(tmp_path, smtp_sink)
    try:
        news = "<march-news@news.example.com>"
        for who in ("ann@example.org", "bob@example.org"):
            await send(
                gw,
                mail(
                    "Re: Our March news",
                    f"unsubscribe me, {who}",
                    sender=who,
                    in_reply_to=news,
                    references=news,
                ),
                sender=who,
            )
        convs = await conversations(gw)
        assert len(convs) == 2 and convs[0]["contact_id"] != convs[1]["contact_id"]
        assert sorted([(await texts(gw, c["id"]))[0] for c in convs]) == [
            "unsubscribe me, ann@example.org",
            "unsubscribe me, bob@example.org",
        ]
    finally:
        await gw.close()


async def test_a_forwarded_mail_opens_a_new_conversation(tmp_path: Path, smtp_sink):
    gw = await start(tmp_path, smtp_sink)
    try:
        th = await ann_thread(gw, smtp_sink)
        ours = th.reply["Message-ID"]
        body = (
            f"FYI, see below.\n\n---------- Forwarded message ---------\nFrom: Support <{SUPPORT}>\nChecking."
        )
        await send(gw, mail("Fwd: Re: Order 1234", body, references=f"<a1@example.org> {ours}"))
        convs = await conversations(gw)
        assert len(convs) == 2
        [new] = [c for c in convs if c["id"] != th.conv_id]
        assert (await texts(gw, new["id"]))[0].startswith("FYI, see below.")
        assert await texts(gw, th.conv_id) == ["Where is it?", "Checking."]
    finally:
        await gw.close()


async def test_auto_replies_and_bounces_never_open_conversations_or_run_hooks(tmp_path: Path, smtp_sink):
    gw = await start(tmp_path, smtp_sink)
    calls: list[str] = []

    async def bot(session, ctx):  # stands for routing, consent keywords and bots
        calls.append(ctx.inbound.provider_message_id)

    gw.container.pipeline.hooks.append(bot)
    try:
        th = await ann_thread(gw, smtp_sink)
        assert calls == ["<a1@example.org>"]
        await gw.api("PATCH", f"/conversations/{th.conv_id}", json_body={"status": "resolved"})

        # Ann's out-of-office answers our reply: kept in her conversation, which stays resolved.
        ooo = mail(
            "Automatic reply: Re: Order 1234",
            "I am out of office until Monday.",
            in_reply_to=th.reply["Message-ID"],
            headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
        )
        await send(gw, ooo)
        assert (await texts(gw, th.conv_id))[-1] == "I am out of office until Monday."
        _, conv = await gw.api("GET", f"/conversations/{th.conv_id}")
        assert conv["status"] == "resolved"

        # A stranger's list mail and a bounce from MAILER-DAEMON with a null sender.
        await send(
            gw,
            mail("Weekly digest", "news", sender="digest@lists.example.com", headers={"Precedence": "bulk"}),
            sender="digest@lists.example.com",
        )
        dsn = EmailMessage(policy=policy.SMTP)
        dsn["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.org>"
        dsn["To"] = SUPPORT
        dsn["Subject"] = "Undelivered Mail Returned to Sender"
        dsn["Message-ID"] = "<dsn-1@mx.example.org>"
        dsn.set_content("This is the mail system at host mx.example.org. I'm sorry ...")
        dsn.make_mixed()
        dsn.replace_header("Content-Type", 'multipart/report; report-type="delivery-status"')
        await smtp_send(gw.container.smtp.port, dsn.as_bytes(), "", [SUPPORT])

        assert await conversations(gw) == []  # nothing open
        assert calls == ["<a1@example.org>"]  # no hook saw any of them
        held = await conversations(gw, "status=resolved")
        labels = sorted(label for c in held for label in c["labels"])
        assert labels == ["bounce", "bulk"]
    finally:
        await gw.close()


async def test_filtered_mail_is_kept_in_the_filtered_folder(tmp_path: Path, smtp_sink):
    gw = await start(tmp_path, smtp_sink)
    try:
        status, channel = await gw.api(
            "POST",
            "/channels",
            json_body={
                "inbox_id": 1,
                "kind": "email",
                "name": "Sales mail",
                "config": {
                    "address": "sales@demo.switchboard.test",
                    "blocked_senders": ["pest@example.net"],
                    "blocked_domains": ["spam.example"],
                    "spam_header": {"name": "X-Spam-Flag", "contains": "YES"},
                },
            },
        )
        assert status == 201
        sales = "sales@demo.switchboard.test"
        for sender, headers in (
            ("pest@example.net", {}),
            ("offers@spam.example", {}),
            ("nigerian@prince.example", {"X-Spam-Flag": "YES", "X-Spam-Status": "Yes, score=9.1"}),
        ):
            await send(
                gw, mail("Deal", f"from {sender}", sender=sender, to=sales, headers=headers), sender, sales
            )
        await send(
            gw,
            mail("Quote please", "real customer", sender="dan@example.org", to=sales),
            "dan@example.org",
            sales,
        )

        open_ = await conversations(gw)
        assert [await texts(gw, c["id"]) for c in open_] == [["real customer"]]
        filtered = await conversations(gw, "status=resolved&label=filtered")
        spam = await conversations(gw, "status=resolved&label=spam")
        kept = sorted([t for c in filtered + spam for t in await texts(gw, c["id"])])
        assert kept == ["from nigerian@prince.example", "from offers@spam.example", "from pest@example.net"]
        assert all(c["channel_id"] == channel["id"] for c in filtered + spam)
    finally:
        await gw.close()


async def test_a_bounce_fails_the_message_it_bounces(tmp_path: Path, smtp_sink):
    gw = await start(tmp_path, smtp_sink)
    try:
        th = await ann_thread(gw, smtp_sink)
        stream = await gw.stream()
        await stream.ready()
        await smtp_send(
            gw.container.smtp.port,
            dsn(th.reply["Message-ID"], diagnostic="smtp; 550 5.1.1 <ann@example.org>: User unknown"),
            "",
            [SUPPORT],
        )
        failed = await stream.next(lambda e: e["type"] == "message.updated")
        message = failed["data"]["message"]
        assert message["provider_message_id"] == th.reply["Message-ID"]
        assert message["status"] == "failed" and message["reason"] == "invalid_recipient"
        assert "User unknown" in message["error_detail"]
        # The bounce itself is kept in the thread, but the conversation is not reopened or re-routed.
        assert (await texts(gw, th.conv_id))[-1].startswith("I'm sorry to have to inform you")
        # A bounce naming a message we never minted changes nothing.
        await smtp_send(gw.container.smtp.port, dsn("<not-ours@elsewhere.example>"), "", [SUPPORT])
        _, messages = await gw.api("GET", f"/conversations/{th.conv_id}/messages")
        assert [m["status"] for m in messages["items"]][:2] == ["received", "failed"]
    finally:
        await gw.close()


async def test_our_own_mail_coming_back_is_held_so_nothing_can_loop(tmp_path: Path, smtp_sink):
    gw = await start(tmp_path, smtp_sink)
    calls: list[str] = []

    async def bot(session, ctx):
        calls.append(ctx.inbound.provider_message_id)

    gw.container.pipeline.hooks.append(bot)
    try:
        th = await ann_thread(gw, smtp_sink)
        # Our reply delivered back to us (say Ann's server forwards everything to support@).
        envelope = (await smtp_sink.wait_for(1))[0]
        await smtp_send(gw.container.smtp.port, envelope.content, SUPPORT, [SUPPORT])
        # And a mail claiming to be from our own address.
        await send(gw, mail("ping", "from ourselves", sender=SUPPORT), sender=SUPPORT)
        assert calls == ["<a1@example.org>"]
        assert [c["id"] for c in await conversations(gw)] == [th.conv_id]
        assert len(smtp_sink.messages) == 1  # nothing answered
    finally:
        await gw.close()
