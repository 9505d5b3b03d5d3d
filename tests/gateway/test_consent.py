"""Consent by keyword and by hand, its history, and the refusals it causes — over the REST API."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.policy_support import LOOPBACK, configure_channel, outgoing_in, send_to
from tests.harness import ManualClock, start_gateway

PHONE = "+15550200100"


async def _consent(gw, contact_id: int) -> dict:
    code, body = await gw.api("GET", f"/contacts/{contact_id}/consent")
    assert code == 200, body
    return {c["channel_id"]: c for c in body["channels"]}


async def test_keywords_change_consent_once_each_with_one_confirmation(tmp_path: Path, clock: ManualClock):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(
            gw,
            consent=True,
            service_window=True,
            metered=False,
            opt_out_text="Bye! Reply START to come back.",
            opt_in_text="Welcome back!",
            help_text="Write HELP DESK for a human.",
        )
        loop = await gw.loopback()
        stop = await loop.customer_writes(PHONE, " Stop ")
        conversation_id = stop.conversation_id
        confirmation, _ = await loop.next_sent()
        assert confirmation.text == "Bye! Reply START to come back." and confirmation.to == PHONE

        _, conv = await gw.api("GET", f"/conversations/{conversation_id}")
        state = (await _consent(gw, conv["contact_id"]))[LOOPBACK]
        assert state["state"] == "opted_out"
        assert [(h["previous"], h["state"], h["source"]) for h in state["history"]] == [
            ("unknown", "opted_out", "keyword")
        ]
        assert state["history"][0]["evidence"] == f"message:{stop.message_id}"

        # Repeating the keyword, in another spelling, changes nothing and confirms nothing.
        await loop.customer_writes(PHONE, "PARÁR")
        assert len(await outgoing_in(gw, conversation_id)) == 1
        # Not a keyword: a sentence with one in it.
        await loop.customer_writes(PHONE, "stop please")
        assert (await _consent(gw, conv["contact_id"]))[LOOPBACK]["state"] == "opted_out"

        await loop.customer_writes(PHONE, "start")
        welcome, _ = await loop.next_sent()
        assert welcome.text == "Welcome back!"
        await loop.customer_writes(PHONE, "help")
        help_, _ = await loop.next_sent()
        assert help_.text == "Write HELP DESK for a human."

        state = (await _consent(gw, conv["contact_id"]))[LOOPBACK]
        assert state["state"] == "opted_in"
        assert [h["state"] for h in state["history"]] == ["opted_out", "opted_in"]
        assert [m["text"] for m in await outgoing_in(gw, conversation_id)] == [
            "Bye! Reply START to come back.",
            "Welcome back!",
            "Write HELP DESK for a human.",
        ]
        # Every keyword message itself landed in the inbox.
        _, page = await gw.api("GET", f"/conversations/{conversation_id}/messages")
        incoming = [m["text"] for m in page["items"] if m["kind"] == "incoming"]
        assert incoming == [" Stop ", "PARÁR", "stop please", "start", "help"]
    finally:
        await gw.close()


async def test_refusal_codes_for_business_initiated_sends(tmp_path: Path, clock: ManualClock):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, consent=True, service_window=True, metered=False)
        loop = await gw.loopback()

        never = await send_to(gw, "+15550200200", "Our summer sale starts today!")
        assert never["status"] == "failed" and never["reason"] == "not_opted_in"

        await loop.customer_writes("+15550200300", "STOP")
        await loop.next_sent()  # the opt-out confirmation
        out = await send_to(gw, "+15550200300", "Our summer sale starts today!")
        assert out["status"] == "failed" and out["reason"] == "opted_out"
        assert out["text"] == "Our summer sale starts today!"

        # A service reply inside the window is allowed even after an opt-out.
        code, conv_reply = await gw.api(
            "POST", f"/conversations/{out['conversation_id']}/messages", json_body={"text": "Noted, sorry!"}
        )
        assert code == 201 and conv_reply["status"] == "queued"

        await loop.customer_writes("+15550200400", "YES")
        await loop.next_sent()
        ok = await send_to(gw, "+15550200400", "Our summer sale starts today!")
        assert ok["status"] == "queued"

        # Outside the window even a reply is business-initiated: opted-out contacts get nothing.
        clock.advance(hours=25)
        code, late = await gw.api(
            "POST", f"/conversations/{out['conversation_id']}/messages", json_body={"text": "Miss us?"}
        )
        assert code == 201 and late["reason"] == "opted_out"
    finally:
        await gw.close()


async def test_manual_opt_in_needs_prior_contact_and_opt_out_always_works(tmp_path: Path, clock: ManualClock):
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, consent=True, service_window=False, metered=False)
        loop = await gw.loopback()
        agent_id, agent_token = await gw.user("agent7@example.com", inbox_ids=[1])

        cold = await send_to(gw, "+15550200500", "hello?")  # refused: never opted in, contact exists now
        assert cold["reason"] == "not_opted_in"
        _, conv = await gw.api("GET", f"/conversations/{cold['conversation_id']}")
        contact_id = conv["contact_id"]

        code, err = await gw.api(
            "POST", f"/contacts/{contact_id}/consent", json_body={"channel_id": LOOPBACK, "state": "opted_in"}
        )
        assert code == 409 and err["error"]["code"] == "no_prior_contact"
        code, body = await gw.api(
            "POST",
            f"/contacts/{contact_id}/consent",
            json_body={"channel_id": LOOPBACK, "state": "opted_out"},
        )
        assert code == 200
        assert body["channels"][0]["state"] == "opted_out"

        await loop.customer_writes("+15550200500", "Hi, it's me")
        code, body = await gw.api(
            "POST",
            f"/contacts/{contact_id}/consent",
            json_body={"channel_id": LOOPBACK, "state": "opted_in"},
            token=agent_token,
        )
        assert code == 200
        history = body["channels"][0]["history"]
        assert [(h["state"], h["source"], h["evidence"]) for h in history] == [
            ("opted_out", "agent", "user:1"),
            ("opted_in", "agent", f"user:{agent_id}"),
        ]
        assert (await send_to(gw, "+15550200500", "Welcome aboard"))["status"] == "queued"

        code, err = await gw.api(
            "POST", f"/contacts/{contact_id}/consent", json_body={"channel_id": LOOPBACK, "state": "maybe"}
        )
        assert code == 422 and err["error"]["details"][0]["field"] == "state"
        code, err = await gw.api(
            "POST", f"/contacts/{contact_id}/consent", json_body={"channel_id": 999, "state": "opted_out"}
        )
        assert code == 422
    finally:
        await gw.close()


async def test_opt_in_link_for_whatsapp_prefills_the_keyword(tmp_path: Path):
    gw = await start_gateway(tmp_path)
    try:
        code, channel = await gw.api(
            "POST",
            "/channels",
            json_body={
                "inbox_id": 1,
                "kind": "whatsapp",
                "name": "Sales WhatsApp",
                "config": {"display_phone_number": "+1 555 010 0999", "phone_number_id": "1"},
            },
        )
        assert code == 201, channel
        code, link = await gw.api("GET", f"/channels/{channel['id']}/opt-in-link")
        assert code == 200
        assert link == {
            "channel_id": channel["id"],
            "keyword": "START",
            "url": "https://wa.me/15550100999?text=START",
        }

        await configure_channel(
            gw, channel["id"], click_to_chat_url="http://sim.test/phone?to={number}&text={text}"
        )
        _, link = await gw.api("GET", f"/channels/{channel['id']}/opt-in-link")
        assert link["url"] == "http://sim.test/phone?to=15550100999&text=START"
    finally:
        await gw.close()


async def test_an_account_in_portuguese_confirms_in_portuguese(tmp_path: Path, clock: ManualClock):
    """A pt-BR account: "sair" opts out and "quero" opts in, each confirmed in Portuguese."""
    gw = await start_gateway(tmp_path, clock=clock)
    try:
        await configure_channel(gw, consent=True, service_window=True, metered=False)
        loop = await gw.loopback()
        await loop.customer_writes("+15550200500", "STOP")
        english, _ = await loop.next_sent()
        assert (english.text or "").startswith("You are unsubscribed")

        status, _ = await gw.api("PATCH", "/account", json_body={"language": "pt-BR"})
        assert status == 200
        out = await loop.customer_writes(PHONE, " Sair ")
        confirmation, _ = await loop.next_sent()
        assert confirmation.text == (
            "Inscrição cancelada: você não receberá mais mensagens. "
            "Responda INICIAR para se inscrever de novo."
        )
        _, conv = await gw.api("GET", f"/conversations/{out.conversation_id}")
        assert (await _consent(gw, conv["contact_id"]))[LOOPBACK]["state"] == "opted_out"

        await loop.customer_writes(PHONE, "Quero")
        welcome, _ = await loop.next_sent()
        assert welcome.text == "Inscrição confirmada. Responda SAIR para cancelar ou AJUDA para obter ajuda."
        assert (await _consent(gw, conv["contact_id"]))[LOOPBACK]["state"] == "opted_in"
    finally:
        await gw.close()
