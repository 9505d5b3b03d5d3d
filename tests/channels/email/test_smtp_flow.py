"""End to end over real SMTP: smtplib → the gateway's SMTP port → the inbox; the agent's reply →
a real aiosmtpd sink with threading headers; the customer's answer → the same conversation."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
from sqlalchemy import select

from channels.email.threading import ReplyTokens, split_plus
from inbox import tables as t
from tests.channels.email.conftest import SUPPORT, mail, parsed, smtp_send
from tests.harness import Gateway, start_gateway


async def email_gateway(tmp_path: Path, sink_port: int, **settings) -> Gateway:
    return await start_gateway(
        tmp_path,
        settings={"smtp_url": f"smtp://127.0.0.1:{sink_port}", "mail_domain": "mail.test", **settings},
    )


async def conversation_of(gw: Gateway, email: str) -> dict:
    status, page = await gw.api("GET", "/conversations?status=open")
    assert status == 200
    for conv in page["items"]:
        _, contact = await gw.api("GET", f"/contacts/{conv['contact_id']}")
        if contact["email"] == email or any(i["address"] == email for i in contact["identities"]):
            return conv
    raise AssertionError(f"no open conversation for {email}")


async def texts(gw: Gateway, conversation_id: int) -> list[str]:
    _, messages = await gw.api("GET", f"/conversations/{conversation_id}/messages")
    return [m["text"] for m in messages["items"]]


async def test_mail_in_agent_reply_out_customer_answer_joins(tmp_path: Path, smtp_sink, database_url):
    gw = await start_gateway(
        tmp_path,
        database_url=database_url,
        settings={"smtp_url": f"smtp://127.0.0.1:{smtp_sink.port}", "mail_domain": "mail.test"},
    )
    try:
        port = gw.container.smtp.port
        first = mail(
            "=?utf-8?q?Bestellung_1234_fehlt_=C3=A9?=",
            "Hello,\nmy order has not arrived.\n\n-- \nAnn Example\nACME Ltd",
            msgid="<first@example.org>",
            html="<p>Hello,<br>my order has not arrived.<script>alert(1)</script></p>",
            attachments=[(b"%PDF-1.4 receipt", "application/pdf", "receipt.pdf")],
        )
        assert await smtp_send(port, first, "ann@example.org", [SUPPORT]) == {}

        conv = await conversation_of(gw, "ann@example.org")
        _, messages = await gw.api("GET", f"/conversations/{conv['id']}/messages")
        [shown] = messages["items"]
        assert shown["text"] == "Hello,\nmy order has not arrived."  # signature trimmed
        assert shown["provider_message_id"] == "<first@example.org>"
        [pdf] = shown["attachments"]
        assert pdf["filename"] == "receipt.pdf" and pdf["size"] == len(b"%PDF-1.4 receipt")
        assert await gw.container.media.get(pdf["media_key"]) == b"%PDF-1.4 receipt"
        async with gw.container.db.read() as session:
            row = await session.get(t.Message, shown["id"])
            raw = row.raw["email"]  # type: ignore[union-attr,index]
        assert raw["subject"] == "Bestellung 1234 fehlt é"  # RFC 2047 decoded
        assert "ACME Ltd" in raw["text"]  # the full text is kept
        assert "<script" not in raw["html"] and "my order has not arrived." in raw["html"]
        assert await gw.container.media.get(raw["original_media_key"]) == first

        stream = await gw.stream()
        await stream.ready()
        status, _ = await gw.api(
            "POST", f"/conversations/{conv['id']}/messages", json_body={"text": "We are on it.\nSorry!"}
        )
        assert status == 201
        await stream.next(
            lambda e: e["type"] == "message.updated" and e["data"]["message"]["status"] == "sent"
        )
        [envelope] = await smtp_sink.wait_for(1)
        reply = parsed(envelope)
        assert envelope.rcpt_tos == ["ann@example.org"]
        assert reply["Subject"] == "Re: Bestellung 1234 fehlt é"
        assert reply["In-Reply-To"] == "<first@example.org>"
        assert reply["References"].split() == ["<first@example.org>"]
        assert reply["Message-ID"].endswith("@mail.test>")
        reply_to, token = split_plus(reply["Reply-To"])
        assert reply_to == SUPPORT and token
        assert reply.get_body(("plain",)).get_content().strip() == "We are on it.\nSorry!"  # type: ignore[union-attr]
        assert "We are on it.<br>" in reply.get_body(("html",)).get_content()  # type: ignore[union-attr]

        _, messages = await gw.api("GET", f"/conversations/{conv['id']}/messages")
        sent = messages["items"][-1]
        assert sent["status"] == "sent" and sent["provider_message_id"] == reply["Message-ID"]

        # The customer answers through the reply, quoting our text.
        answer = mail(
            "Re: " + reply["Subject"],
            f"Thanks!\n\nOn Tue, 10 Mar 2026, Support <{SUPPORT}> wrote:\n> We are on it.\n> Sorry!",
            msgid="<answer@example.org>",
            in_reply_to=reply["Message-ID"],
            references=f"<first@example.org> {reply['Message-ID']}",
            to=reply["Reply-To"],
        )
        await smtp_send(port, answer, "ann@example.org", [reply["Reply-To"]])
        assert await texts(gw, conv["id"]) == [
            "Hello,\nmy order has not arrived.",
            "We are on it.\nSorry!",
            "Thanks!",
        ]

        # A second agent reply threads under the whole history.
        await gw.api("POST", f"/conversations/{conv['id']}/messages", json_body={"text": "Shipped today."})
        second = parsed((await smtp_sink.wait_for(2))[1])
        assert second["In-Reply-To"] == "<answer@example.org>"
        assert second["References"].split() == [
            "<first@example.org>",
            reply["Message-ID"],
            "<answer@example.org>",
        ]
        assert second["Subject"] == "Re: Bestellung 1234 fehlt é"  # "Re: " once
    finally:
        await gw.close()


async def test_unknown_recipient_is_refused_at_rcpt_and_oversize_mail_with_552(tmp_path: Path, smtp_sink):
    gw = await email_gateway(tmp_path, smtp_sink.port, smtp_max_bytes=4096)
    try:
        port = gw.container.smtp.port
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            await smtp_send(port, mail("hi", "x"), "ann@example.org", ["nobody@demo.switchboard.test"])
        assert refused.value.recipients["nobody@demo.switchboard.test"][0] == 550
        assert b"5.1.1" in refused.value.recipients["nobody@demo.switchboard.test"][1]

        with pytest.raises(smtplib.SMTPSenderRefused) as big:  # smtplib declares SIZE, refused at MAIL
            await smtp_send(port, mail("big", "x" * 10_000), "ann@example.org", [SUPPORT])
        assert big.value.smtp_code == 552
        status, page = await gw.api("GET", "/conversations?status=open")
        assert all(c["channel_id"] != 2 for c in page["items"])

        # Mixed recipients: the known one gets the mail, the unknown one is refused.
        result = await smtp_send(
            port, mail("mixed", "for support"), "ann@example.org", [SUPPORT, "ghost@elsewhere.test"]
        )
        assert result["ghost@elsewhere.test"][0] == 550
        conv = await conversation_of(gw, "ann@example.org")
        assert await texts(gw, conv["id"]) == ["for support"]
    finally:
        await gw.close()


async def test_inbox_fallback_address_receives_into_that_inbox(tmp_path: Path, smtp_sink):
    gw = await email_gateway(tmp_path, smtp_sink.port)
    try:
        _, me = await gw.api("GET", "/users/me")
        status, inbox = await gw.api(
            "POST", "/inboxes", json_body={"name": "Billing", "member_ids": [me["id"]]}
        )
        assert status == 201
        port = gw.container.smtp.port
        address = f"inbox-{inbox['id']}@mail.test"
        await smtp_send(
            port,
            mail("invoice", "wrong amount", to=address, sender="bob@example.org"),
            "bob@example.org",
            [address],
        )
        conv = await conversation_of(gw, "bob@example.org")
        assert conv["inbox_id"] == inbox["id"]
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            await smtp_send(port, mail("x", "y"), "bob@example.org", ["inbox-99999@mail.test"])
    finally:
        await gw.close()


async def test_forged_reply_token_does_not_join_another_conversation(tmp_path: Path, smtp_sink):
    gw = await email_gateway(tmp_path, smtp_sink.port)
    try:
        port = gw.container.smtp.port
        await smtp_send(
            port, mail("mine", "private matter", sender="ann@example.org"), "ann@example.org", [SUPPORT]
        )
        ann = await conversation_of(gw, "ann@example.org")
        async with gw.container.db.read() as session:
            key = (await session.get(t.Conversation, ann["id"])).thread_key  # type: ignore[union-attr]
        forged = "support+" + ReplyTokens("guessed-secret").make(key) + "@demo.switchboard.test"
        await smtp_send(
            port, mail("hi", "let me in", sender="eve@example.net", to=forged), "eve@example.net", [forged]
        )
        eve = await conversation_of(gw, "eve@example.net")
        assert eve["id"] != ann["id"]
        assert await texts(gw, ann["id"]) == ["private matter"]
    finally:
        await gw.close()


async def test_relay_5xx_fails_the_message_with_the_servers_reason(tmp_path: Path, smtp_sink):
    import asyncio

    from aiosmtpd.smtp import SMTP

    class Refusing:
        async def handle_RCPT(self, server, session, envelope, address, options):
            return "550 5.1.1 <ann@example.org>: Recipient address rejected: User unknown"

    loop = asyncio.get_running_loop()
    relay = await loop.create_server(lambda: SMTP(Refusing(), hostname="relay.test"), "127.0.0.1", 0)
    gw = await email_gateway(tmp_path, relay.sockets[0].getsockname()[1])
    try:
        await smtp_send(gw.container.smtp.port, mail("hi", "hello"), "ann@example.org", [SUPPORT])
        conv = await conversation_of(gw, "ann@example.org")
        stream = await gw.stream()
        await stream.ready()
        _, msg = await gw.api("POST", f"/conversations/{conv['id']}/messages", json_body={"text": "reply"})
        failed = await stream.next(
            lambda e: e["type"] == "message.updated" and e["data"]["message"]["id"] == msg["id"]
        )
        assert failed["data"]["message"]["status"] == "failed"
        assert failed["data"]["message"]["reason"] == "invalid_recipient"
        assert "User unknown" in failed["data"]["message"]["error_detail"]
    finally:
        await gw.close()
        relay.close()
        await relay.wait_closed()


async def test_stored_provider_ids_are_message_ids(tmp_path: Path, smtp_sink):
    gw = await email_gateway(tmp_path, smtp_sink.port)
    try:
        await smtp_send(
            gw.container.smtp.port, mail("a", "b", msgid="<id-1@example.org>"), "ann@example.org", [SUPPORT]
        )
        # The same message delivered again (a retrying server) is stored once.
        await smtp_send(
            gw.container.smtp.port, mail("a", "b", msgid="<id-1@example.org>"), "ann@example.org", [SUPPORT]
        )
        async with gw.container.db.read() as session:
            ids = list(
                await session.scalars(select(t.Message.provider_message_id).where(t.Message.channel_id == 2))
            )
        assert ids == ["<id-1@example.org>"]
    finally:
        await gw.close()


async def test_malformed_mime_over_smtp_is_stored_with_a_parse_note(tmp_path: Path, smtp_sink):
    gw = await email_gateway(tmp_path, smtp_sink.port)
    try:
        broken = (
            b"From: ann@example.org\r\nTo: support@demo.switchboard.test\r\nSubject: =?utf-8?b?!!broken?=\r\n"
            b'Content-Type: multipart/mixed; boundary="never-closed"\r\n\r\n'
            b"--never-closed\r\nContent-Type: text/plain; charset=x-no-such\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n@@@ not base64 @@@\r\n"
        )
        assert await smtp_send(gw.container.smtp.port, broken, "ann@example.org", [SUPPORT]) == {}
        conv = await conversation_of(gw, "ann@example.org")
        _, messages = await gw.api("GET", f"/conversations/{conv['id']}/messages")
        [stored] = messages["items"]
        async with gw.container.db.read() as session:
            row = await session.get(t.Message, stored["id"])
            raw = row.raw["email"]  # type: ignore[union-attr,index]
        assert raw["parse_notes"]  # what went wrong is recorded
        assert await gw.container.media.get(raw["original_media_key"]) == broken  # as received
    finally:
        await gw.close()


async def test_recorded_mime_shapes_arrive_readable_over_smtp(tmp_path: Path, smtp_sink):
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "email"
    gw = await email_gateway(tmp_path, smtp_sink.port)
    try:
        port = gw.container.smtp.port
        for name, sender in [
            ("nested_no_disposition.eml", "ann@example.org"),
            ("eightbit_no_charset.eml", "carla@example.org"),
        ]:
            assert await smtp_send(port, (fixtures / name).read_bytes(), sender, [SUPPORT]) == {}
        photos = await conversation_of(gw, "ann@example.org")
        _, messages = await gw.api("GET", f"/conversations/{photos['id']}/messages")
        [shown] = messages["items"]
        assert shown["text"] == "See the photo below."
        assert [a["content_type"] for a in shown["attachments"]] == ["image/png", "application/octet-stream"]
        accents = await conversation_of(gw, "carla@example.org")
        assert await texts(gw, accents["id"]) == ["Olá, não recebi o pedido."]
    finally:
        await gw.close()
