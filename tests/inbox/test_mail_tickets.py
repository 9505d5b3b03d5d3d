"""Mail to an inbox's fallback address opens a ticket when the inbox is set to, over real SMTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.channels.email.conftest import SUPPORT, mail, smtp_send
from tests.harness import Gateway, start_gateway


async def tickets(gw: Gateway) -> list[dict[str, Any]]:
    status, page = await gw.api("GET", "/tickets")
    assert status == 200, page
    return list(page["items"])


async def test_mail_to_the_fallback_address_opens_one_ticket_when_the_inbox_says_so(
    tmp_path: Path, smtp_sink
):
    gw = await start_gateway(
        tmp_path, settings={"smtp_url": f"smtp://127.0.0.1:{smtp_sink.port}", "mail_domain": "mail.test"}
    )
    try:
        _, me = await gw.api("GET", "/users/me")
        status, inbox = await gw.api(
            "POST", "/inboxes", json_body={"name": "Billing", "member_ids": [me["id"]]}
        )
        assert status == 201, inbox
        port = gw.container.smtp.port
        address = f"inbox-{inbox['id']}@mail.test"

        # Not set: the mail is a conversation, no ticket.
        before = mail(
            "Invoice 12", "The amount is wrong.", to=address, sender="bob@example.org", msgid="<b1@x>"
        )
        assert await smtp_send(port, before, "bob@example.org", [address]) == {}
        assert await tickets(gw) == []

        status, changed = await gw.api(
            "PATCH", f"/inboxes/{inbox['id']}", json_body={"settings": {"tickets_from_mail": True}}
        )
        assert status == 200, changed
        first = mail(
            "Refund for order 77",
            "Please refund order 77.\nThanks, Carol",
            to=address,
            sender="Carol <carol@example.org>",
            msgid="<c1@example.org>",
        )
        assert await smtp_send(port, first, "carol@example.org", [address.upper()]) == {}
        [ticket] = await tickets(gw)
        assert (ticket["title"], ticket["stage"], ticket["inbox_id"]) == (
            "Refund for order 77",
            "new",
            inbox["id"],
        )
        assert "Please refund order 77." in ticket["description"]
        [conversation_id] = ticket["conversation_ids"]
        status, conversation = await gw.api("GET", f"/conversations/{conversation_id}")
        assert conversation["contact_id"] == ticket["contact_id"]
        status, contact = await gw.api("GET", f"/contacts/{ticket['contact_id']}")
        assert contact["email"] == "carol@example.org"

        # Her answer in the same thread joins the conversation; it opens no second ticket.
        again = mail(
            "Re: Refund for order 77",
            "Any news?",
            to=address,
            sender="carol@example.org",
            msgid="<c2@example.org>",
            in_reply_to="<c1@example.org>",
            references="<c1@example.org>",
        )
        assert await smtp_send(port, again, "carol@example.org", [address]) == {}
        status, messages = await gw.api("GET", f"/conversations/{conversation_id}/messages")
        assert [m["text"] for m in messages["items"]] == [
            "Please refund order 77.\nThanks, Carol",
            "Any news?",
        ]
        assert len(await tickets(gw)) == 1

        # An auto-reply to the fallback address opens nothing, nor does mail to a channel's own address.
        auto = mail(
            "Out of office",
            "I am away.",
            to=address,
            sender="dan@example.org",
            headers={"Auto-Submitted": "auto-replied"},
        )
        assert await smtp_send(port, auto, "dan@example.org", [address]) == {}
        status, inboxes = await gw.api("GET", "/inboxes")
        assert status == 200, inboxes
        items = inboxes["items"] if isinstance(inboxes, dict) else inboxes
        support = next(i for i in items if i["id"] == 1)
        settings = {**support["settings"], "tickets_from_mail": True}
        status, _ = await gw.api("PATCH", "/inboxes/1", json_body={"settings": settings})
        assert status == 200
        plain = mail("Hello", "Just a question.", sender="erin@example.org")
        assert await smtp_send(port, plain, "erin@example.org", [SUPPORT]) == {}
        assert len(await tickets(gw)) == 1
    finally:
        await gw.close()
