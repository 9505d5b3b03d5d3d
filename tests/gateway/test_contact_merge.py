"""One person, two contacts: suggested as duplicates, previewed, merged with nothing lost, audited."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from inbox import tables as t
from inbox.consent import ConsentSource, ConsentStatus, set_consent
from inbox.model import InboundMessage
from inbox.tags import add_tag
from tests.gateway.test_uploads import channel_of_kind
from tests.harness import ManualClock, start_gateway


async def test_an_email_contact_merged_into_a_whatsapp_contact_keeps_both_histories(
    tmp_path: Path, database_url: str | None, clock: ManualClock
):
    gw = await start_gateway(tmp_path, database_url=database_url, clock=clock)
    try:
        email_channel = await channel_of_kind(gw, "email")
        whatsapp_channel = await channel_of_kind(gw, "whatsapp")
        by_mail = await gw.container.pipeline.receive(
            InboundMessage(
                channel_id=email_channel,
                provider_message_id="<m1@example.org>",
                sender="Ann.Lee@Example.org",
                sender_name="Ann Lee",
                text="My order 42 never came",
            )
        )
        clock.advance(hours=2)
        by_phone = await gw.container.pipeline.receive(
            InboundMessage(
                channel_id=whatsapp_channel,
                provider_message_id="wamid.m2",
                sender="+5511987650555",
                sender_name="Ann",
                text="Hi, about order 42",
            )
        )
        _, mail_conv = await gw.api("GET", f"/conversations/{by_mail.conversation_id}")
        _, phone_conv = await gw.api("GET", f"/conversations/{by_phone.conversation_id}")
        mail_contact, phone_contact = mail_conv["contact_id"], phone_conv["contact_id"]
        assert mail_contact != phone_contact

        # Both sides hold things: attributes (one conflicting), tags, consent on their channel.
        async with gw.container.db.write() as session:
            mail_row = await session.get(t.Contact, mail_contact)
            phone_row = await session.get(t.Contact, phone_contact)
            assert mail_row is not None and phone_row is not None
            phone_row.email = "ann.lee@example.org"  # e.g. typed in by an agent, or from an import
            await add_tag(session, mail_row, "vip", source="manual", now=clock())
            await set_consent(
                session,
                account_id=mail_row.account_id,
                contact_id=mail_contact,
                channel_id=email_channel,
                state=ConsentStatus.OPTED_IN,
                source=ConsentSource.AGENT,
                evidence="user:1",
                now=clock(),
            )
        await gw.api(
            "PATCH", f"/contacts/{mail_contact}", json_body={"attributes": {"plan": "gold", "city": "Recife"}}
        )
        await gw.api("PATCH", f"/contacts/{phone_contact}", json_body={"attributes": {"plan": "silver"}})

        status, dupes = await gw.api("GET", f"/contacts/{phone_contact}/duplicates")
        assert status == 200 and [c["id"] for c in dupes["items"]] == [mail_contact]

        status, preview = await gw.api("GET", f"/contacts/{phone_contact}/merge?from={mail_contact}")
        assert status == 200, preview
        assert preview["newer"] == "into"  # the WhatsApp contact wrote last
        assert preview["conflicts"] == [
            {"field": "name", "kept": "Ann", "dropped": "Ann Lee", "source": "into"},
            {"field": "attributes.plan", "kept": "silver", "dropped": "gold", "source": "into"},
        ]
        assert preview["moves"]["conversations"] == 1 and preview["moves"]["identities"] == 1
        # A preview changes nothing.
        status, _ = await gw.api("GET", f"/contacts/{mail_contact}")
        assert status == 200

        stream = await gw.stream()
        await stream.ready()
        status, merged = await gw.api(
            "POST", f"/contacts/{phone_contact}/merge", json_body={"from": mail_contact}
        )
        assert status == 200, merged
        contact = merged["contact"]
        assert {(i["kind"], i["address"]) for i in contact["identities"]} == {
            ("email", "ann.lee@example.org"),
            ("whatsapp", "+5511987650555"),
        }
        assert contact["attributes"] == {"plan": "silver", "city": "Recife"}
        assert [x["tag"] for x in contact["tags"]] == ["vip"]
        event = await stream.next(lambda e: e["type"] == "contact.merged")
        assert event["data"]["contact_id"] == phone_contact
        assert event["data"]["from_contact_id"] == mail_contact

        # One sidebar: both conversations, the consent of the email channel with its history.
        status, conversations = await gw.api("GET", f"/contacts/{phone_contact}/conversations")
        assert status == 200
        assert {c["id"] for c in conversations["items"]} == {
            by_mail.conversation_id,
            by_phone.conversation_id,
        }
        _, consent = await gw.api("GET", f"/contacts/{phone_contact}/consent")
        email_consent = next(r for r in consent["channels"] if r["channel_id"] == email_channel)
        assert email_consent["state"] == "opted_in" and len(email_consent["history"]) == 1
        _, messages = await gw.api("GET", f"/conversations/{by_mail.conversation_id}/messages")
        assert [m["text"] for m in messages["items"]] == ["My order 42 never came"]

        # The merged-away contact is gone, its next email lands on the merged contact.
        status, _ = await gw.api("GET", f"/contacts/{mail_contact}")
        assert status == 404
        again = await gw.container.pipeline.receive(
            InboundMessage(
                channel_id=email_channel,
                provider_message_id="<m3@example.org>",
                sender="ann.lee@example.org",
                text="Any news?",
            )
        )
        _, conv = await gw.api("GET", f"/conversations/{again.conversation_id}")
        assert conv["contact_id"] == phone_contact

        # The audit keeps the other contact as it was and the conflicts.
        status, audit = await gw.api("GET", f"/contacts/{phone_contact}/merges")
        assert status == 200
        [entry] = audit["items"]
        assert entry["from_contact_id"] == mail_contact and entry["user_id"] is not None
        assert entry["snapshot"]["contact"]["name"] == "Ann Lee"
        assert entry["snapshot"]["contact"]["attributes"] == {"plan": "gold", "city": "Recife"}
        assert [c["field"] for c in entry["conflicts"]] == ["name", "attributes.plan"]
        async with gw.container.db.read() as session:
            tag_events = await session.scalar(
                select(func.count()).where(t.Event.type == "contact.tag_added", t.Event.account_id == 1)
            )
            moved = list(await session.scalars(select(t.Event).where(t.Event.type == "contact.tag_added")))
        assert tag_events == 1 and moved[0].payload["contact_id"] == phone_contact
    finally:
        await gw.close()


async def test_merge_refuses_itself_and_unknown_contacts_naming_from(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        whatsapp_channel = await channel_of_kind(gw, "whatsapp")
        result = await gw.container.pipeline.receive(
            InboundMessage(
                channel_id=whatsapp_channel, provider_message_id="wamid.x", sender="+5511987650556", text="oi"
            )
        )
        _, conv = await gw.api("GET", f"/conversations/{result.conversation_id}")
        contact = conv["contact_id"]
        for body in ({"from": contact}, {"from": 99999}, {}):
            status, err = await gw.api("POST", f"/contacts/{contact}/merge", json_body=body)
            assert status == 422, err
            assert err["error"]["details"][0]["field"] == "from"
        status, _ = await gw.api("GET", f"/contacts/{contact}")
        assert status == 200
    finally:
        await gw.close()
