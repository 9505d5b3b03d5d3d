"""The agent profile: display name, title, meeting link and an avatar checked by its bytes."""

from __future__ import annotations

import email.policy
from email import message_from_bytes
from pathlib import Path

import pytest

from tests.gateway.test_uploads import channel_of_kind, conversation_from
from tests.harness import Gateway, start_gateway

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
async def gw(tmp_path: Path, smtp_sink):
    gateway = await start_gateway(tmp_path, settings={"smtp_url": f"smtp://127.0.0.1:{smtp_sink.port}"})
    yield gateway
    await gateway.close()


async def test_an_agent_sets_name_title_meeting_link_and_avatar(gw: Gateway):
    status, empty = await gw.api("GET", "/users/me/profile")
    assert status == 200, empty
    assert (empty["display_name"], empty["meeting_url"], empty["has_avatar"]) == (None, None, False)

    status, uploaded = await gw.upload(PNG, "me.png")
    assert status == 201, uploaded
    status, profile = await gw.api(
        "PUT",
        "/users/me/profile",
        json_body={
            "display_name": "Ana from Support",
            "title": "Support lead",
            "meeting_url": "https://cal.example.org/ana",
            "avatar_upload_id": uploaded["id"],
        },
    )
    assert status == 200, profile
    assert profile["display_name"] == "Ana from Support"
    assert profile["meeting_url"] == "https://cal.example.org/ana"
    assert profile["has_avatar"] is True

    status, profile = await gw.api("PUT", "/users/me/profile", json_body={"title": None})
    assert status == 200, profile
    assert (profile["display_name"], profile["title"]) == ("Ana from Support", None)
    status, again = await gw.api("GET", "/users/me/profile")
    assert again == profile


async def test_bad_profile_input_is_a_422_naming_the_field_and_changes_nothing(gw: Gateway):
    status, pdf = await gw.upload(PDF, "photo.png")  # named like an image; the bytes say PDF
    assert status == 201, pdf
    status, body = await gw.api("PUT", "/users/me/profile", json_body={"avatar_upload_id": pdf["id"]})
    assert status == 422
    assert "avatar_upload_id" in str(body)
    status, body = await gw.api("PUT", "/users/me/profile", json_body={"meeting_url": "javascript:alert(1)"})
    assert status == 422
    assert "meeting_url" in str(body)
    _, colleague = await gw.user("colleague@example.org", inbox_ids=[1])
    status, theirs = await gw.upload(PNG, "them.png", token=colleague)
    assert status == 201
    status, body = await gw.api("PUT", "/users/me/profile", json_body={"avatar_upload_id": theirs["id"]})
    assert status == 422
    status, profile = await gw.api("GET", "/users/me/profile")
    assert (profile["has_avatar"], profile["meeting_url"]) == (False, None)


async def test_an_email_reply_comes_from_the_agents_display_name(gw: Gateway, smtp_sink):
    status, _ = await gw.api("PUT", "/users/me/profile", json_body={"display_name": "Ana from Support"})
    assert status == 200
    conversation_id = await conversation_from(gw, await channel_of_kind(gw, "email"), "bob@example.org")
    status, reply = await gw.api(
        "POST", f"/conversations/{conversation_id}/messages", json_body={"text": "On it."}
    )
    assert status == 201, reply
    (mail,) = await smtp_sink.wait_for(1)
    message = message_from_bytes(mail.content, policy=email.policy.default)
    assert message["From"].addresses[0].display_name == "Ana from Support"
