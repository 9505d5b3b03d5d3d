"""Consent keywords typed on a phone, through the WhatsApp simulator: a contact of a pt-BR account who
writes "sair" is opted out and gets the Portuguese confirmation on WhatsApp."""

from __future__ import annotations

from tests.gateway.policy_support import configure_channel

CONFIRMATION = (
    "Inscrição cancelada: você não receberá mais mensagens. Responda INICIAR para se inscrever de novo."
)


async def test_sair_from_a_whatsapp_contact_opts_out_with_the_portuguese_confirmation(world):
    await configure_channel(world.gw, world.channel_id, consent=True)
    status, _ = await world.gw.api("PATCH", "/account", json_body={"language": "pt-BR"})
    assert status == 200
    wa_id = "5511987650042"
    sent, _ = await world.contact_writes(f"+{wa_id}", content={"body": "Sair"}, name="Ana")

    def replies() -> list[str | None]:
        thread = world.sim.thread(world.business.phone_number_id, wa_id)
        return [m.text for m in thread if m.direction == "out"]

    await world.until(lambda: replies() != [])
    assert replies() == [CONFIRMATION]  # one confirmation, in the account's language
    conversation_id, _ = await world.conversation_of(sent.wamid)
    _, conversation = await world.gw.api("GET", f"/conversations/{conversation_id}")
    status, consent = await world.gw.api("GET", f"/contacts/{conversation['contact_id']}/consent")
    assert status == 200
    assert {c["channel_id"]: c["state"] for c in consent["channels"]}[world.channel_id] == "opted_out"
