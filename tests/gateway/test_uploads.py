"""Agents attach files to replies: upload, then reply with the upload ids; each channel's limits hold."""

from __future__ import annotations

import email.policy
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from inbox import tables as t
from inbox.model import InboundMessage
from tests.gateway.widget_tabs import add_webchat_channel, open_tab
from tests.harness import Gateway, jobs_done, start_gateway

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
GIF = b"GIF89a" + b"\x00" * 40


async def channel_of_kind(gw: Gateway, kind: str) -> int:
    status, channels = await gw.api("GET", "/channels")
    assert status == 200, channels
    items = channels["items"] if isinstance(channels, dict) else channels
    return int(next(c["id"] for c in items if c["kind"] == kind))


async def conversation_from(gw: Gateway, channel_id: int, sender: str, text: str = "hello") -> int:
    result = await gw.container.pipeline.receive(
        InboundMessage(channel_id=channel_id, provider_message_id=f"in-{sender}", sender=sender, text=text)
    )
    return result.conversation_id


async def messages(gw: Gateway, conversation_id: int) -> list[dict[str, Any]]:
    status, page = await gw.api("GET", f"/conversations/{conversation_id}/messages")
    assert status == 200, page
    return list(page["items"])


@pytest.fixture
async def gw(tmp_path: Path, smtp_sink):
    gateway = await start_gateway(tmp_path, settings={"smtp_url": f"smtp://127.0.0.1:{smtp_sink.port}"})
    yield gateway
    await gateway.close()


async def test_a_pdf_reply_by_email_arrives_as_a_mime_part(gw: Gateway, smtp_sink):
    conversation_id = await conversation_from(gw, await channel_of_kind(gw, "email"), "ann@example.org")
    status, uploaded = await gw.upload(PDF, "invoice-42.pdf")
    assert status == 201, uploaded
    assert (uploaded["content_type"], uploaded["filename"], uploaded["size"]) == (
        "application/pdf",
        "invoice-42.pdf",
        len(PDF),
    )
    status, reply = await gw.api(
        "POST",
        f"/conversations/{conversation_id}/messages",
        json_body={"text": "Your invoice is attached.", "attachments": [uploaded["id"]]},
    )
    assert status == 201, reply
    assert [a["filename"] for a in reply["attachments"]] == ["invoice-42.pdf"]

    (mail,) = await smtp_sink.wait_for(1)
    message = message_from_bytes(mail.content, policy=email.policy.default)
    body = message.get_body(("plain",))
    assert body is not None and "Your invoice is attached." in body.get_content()
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf" and part.get_filename() == "invoice-42.pdf"
    assert part.get_content() == PDF


async def test_a_file_reply_on_web_chat_reaches_the_visitor_with_a_working_link(gw: Gateway):
    await add_webchat_channel(gw, "shop-token", "Shop chat")
    tab = await open_tab(gw.http, gw.base_url, "shop-token", "visitorAAAAAAAAAAAAAAAAAAAAAA")
    await tab.ws.send_json({"type": "message", "client_id": "c1", "text": "Can I have the manual?"})
    ack = await tab.next("ack")
    async with gw.container.db.read() as session:
        stored = await session.get(t.Message, ack["id"])
        assert stored is not None
        conversation_id = stored.conversation_id

    status, uploaded = await gw.upload(PDF, "manual.pdf")
    assert status == 201, uploaded
    status, reply = await gw.api(
        "POST", f"/conversations/{conversation_id}/messages", json_body={"attachments": [uploaded["id"]]}
    )
    assert status == 201, reply
    shown = await tab.next("message")
    while shown["id"] != reply["id"]:
        shown = await tab.next("message")
    [attachment] = shown["attachments"]
    assert attachment["filename"] == "manual.pdf"
    async with gw.http.get(gw.base_url + attachment["url"]) as r:
        assert r.status == 200 and await r.read() == PDF
    await tab.ws.close()


async def test_files_a_channel_would_refuse_are_422_naming_the_limit_and_nothing_is_stored(gw: Gateway):
    conversation_id = await conversation_from(gw, await channel_of_kind(gw, "whatsapp"), "+5511987650077")
    before = await messages(gw, conversation_id)
    _, gif = await gw.upload(GIF, "funny.gif")
    _, png = await gw.upload(PNG, "photo.png")
    _, big = await gw.upload(b"\xff\xd8\xff" + bytes(5 * 1024 * 1024 + 1), "huge.jpg")
    kinds = (gif["content_type"], png["content_type"], big["content_type"])
    assert kinds == ("image/gif", "image/png", "image/jpeg")

    async def refused(attachments: list[int]) -> str:
        status, body = await gw.api(
            "POST",
            f"/conversations/{conversation_id}/messages",
            json_body={"text": "here", "attachments": attachments},
        )
        assert status == 422, body
        assert body["error"]["details"][0]["field"].startswith("attachments")
        return str(body["error"]["message"])

    assert "WhatsApp does not take image/gif" in await refused([gif["id"]])
    assert "at most 1 file(s) per message" in await refused([png["id"], png["id"]])
    assert "image/jpeg files of at most 5 MB" in await refused([big["id"]])
    # Another agent's upload cannot be sent by reference.
    _, agent_token = await gw.user("other@example.org", inbox_ids=[1])
    _, theirs = await gw.upload(PNG, "theirs.png", token=agent_token)
    assert "upload" in await refused([theirs["id"]])
    await jobs_done(gw)
    assert await messages(gw, conversation_id) == before

    # An empty or missing file is a 422 naming the field; a private note keeps any file.
    status, body = await gw.upload(b"", "empty.txt")
    assert status == 422 and body["error"]["details"][0]["field"] == "file"
    status, note = await gw.api(
        "POST",
        f"/conversations/{conversation_id}/messages",
        json_body={"text": "for the team", "private": True, "attachments": [gif["id"]]},
    )
    assert status == 201 and note["attachments"][0]["content_type"] == "image/gif"
