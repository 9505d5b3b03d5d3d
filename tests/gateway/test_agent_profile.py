"""The agent profile: display name, title, meeting link and an avatar checked by its bytes."""

from __future__ import annotations

import email.policy
import io
import os
from email import message_from_bytes
from pathlib import Path

import pytest
from PIL import Image

from tests.gateway.test_uploads import channel_of_kind, conversation_from
from tests.harness import Gateway, start_gateway

ORIENTATION, MAKE, GPS_INFO = 0x0112, 0x010F, 0x8825


def photo(width: int, height: int, fmt: str = "PNG", *, rotated: bool = False) -> bytes:
    """A picture whose left half is red and right half blue; ``rotated``: a camera JPEG stored on its
    side with EXIF orientation 6 (turn 90° clockwise to view), a camera make and a GPS block."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    out = io.BytesIO()
    if rotated:
        exif = Image.Exif()
        exif[ORIENTATION], exif[MAKE] = 6, "PhoneCam"
        exif[GPS_INFO] = {1: "N", 2: (48.0, 51.0, 24.0)}
        image.save(out, format="JPEG", exif=exif, quality=95)
    else:
        image.save(out, format=fmt)
    return out.getvalue()


PNG = photo(64, 64)
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


async def my_avatar(gw: Gateway) -> Image.Image:
    async with gw.http.get(
        f"{gw.base_url}/api/v1/users/me/avatar", headers={"Authorization": f"Bearer {gw.admin_token}"}
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "image/png"
        return Image.open(io.BytesIO(await resp.read()))


async def test_the_avatar_is_kept_as_an_upright_256_pixel_square_without_the_photos_metadata(gw: Gateway):
    original = photo(640, 400, rotated=True)
    assert Image.open(io.BytesIO(original)).getexif()[MAKE] == "PhoneCam"
    status, uploaded = await gw.upload(original, "IMG_0001.jpg")
    assert status == 201, uploaded
    status, profile = await gw.api("PUT", "/users/me/profile", json_body={"avatar_upload_id": uploaded["id"]})
    assert status == 200, profile

    avatar = await my_avatar(gw)
    assert (avatar.format, avatar.size) == ("PNG", (256, 256))
    assert not avatar.getexif() and "exif" not in avatar.info
    # Stored 640x400 on its side: upright it is 400 wide and 640 tall, red on top, blue below.
    rgb = avatar.convert("RGB")
    assert rgb.getpixel((128, 10)) == pytest.approx((255, 0, 0), abs=8)
    assert rgb.getpixel((128, 245)) == pytest.approx((0, 0, 255), abs=8)

    status, small = await gw.upload(photo(40, 30, "GIF"), "tiny.gif")
    assert status == 201, small
    status, _ = await gw.api("PUT", "/users/me/profile", json_body={"avatar_upload_id": small["id"]})
    assert status == 200
    assert (await my_avatar(gw)).size == (256, 256)

    status, _ = await gw.api("PUT", "/users/me/profile", json_body={"avatar_upload_id": None})
    assert status == 200
    status, body = await gw.api("GET", "/users/me/avatar")
    assert status == 404, body


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
    noise = Image.frombytes("RGB", (620, 620), os.urandom(620 * 620 * 3))
    big = io.BytesIO()
    noise.save(big, format="PNG")
    assert big.tell() > 1024 * 1024
    status, large = await gw.upload(big.getvalue(), "big.png")
    assert status == 201, large
    status, body = await gw.api("PUT", "/users/me/profile", json_body={"avatar_upload_id": large["id"]})
    assert status == 422
    assert "avatar_upload_id" in str(body) and "1048576 bytes" in str(body)
    bomb = io.BytesIO()
    Image.new("1", (8000, 8000)).save(bomb, format="PNG")  # a few KB that would decode to 64 Mpixels
    status, huge = await gw.upload(bomb.getvalue(), "huge.png")
    assert status == 201, huge
    status, body = await gw.api("PUT", "/users/me/profile", json_body={"avatar_upload_id": huge["id"]})
    assert status == 422
    assert "avatar_upload_id" in str(body) and "8000x8000" in str(body)
    status, broken = await gw.upload(PNG[:40], "cut.png")  # a PNG's signature, but not a whole image
    assert status == 201, broken
    status, body = await gw.api("PUT", "/users/me/profile", json_body={"avatar_upload_id": broken["id"]})
    assert status == 422
    assert "avatar_upload_id" in str(body) and "not an image" in str(body)
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
