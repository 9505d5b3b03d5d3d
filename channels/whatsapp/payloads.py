"""``OutboundMessage`` → the JSON body of ``POST /{phone-number-id}/messages`` (protocols.md §1).

Limits are checked here, before anything is sent: a message WhatsApp would refuse never leaves.
"""

from __future__ import annotations

from typing import Any

import phonenumbers

from channels.media import MediaLimits
from inbox.model import OutboundMessage, PermanentChannelError, Reason

MAX_TEXT = 4096  # characters, text body
MAX_CAPTION = 1024
MAX_BUTTONS = 3  # reply buttons on an interactive message
MAX_BUTTON_TITLE = 20
MAX_INTERACTIVE_BODY = 1024
# Cloud API media: one file per message; images (JPEG, PNG) up to 5 MB, documents up to 100 MB.
MEDIA_LIMITS = MediaLimits(
    "WhatsApp",
    max_files=1,
    sizes={
        "image/jpeg": 5 * 1024 * 1024,
        "image/png": 5 * 1024 * 1024,
        "application/pdf": 100 * 1024 * 1024,
        "text/plain": 100 * 1024 * 1024,
    },
)


def wa_recipient(address: str) -> str:
    """E.164 (``+5511...``) → the digits WhatsApp wants in ``to``."""
    text = address.strip().removeprefix("whatsapp:")
    try:
        number = phonenumbers.parse(text if text.startswith("+") else "+" + text)
    except phonenumbers.NumberParseException:
        raise PermanentChannelError(Reason.INVALID_RECIPIENT, f"not a phone number: {address!r}") from None
    if not phonenumbers.is_possible_number(number):
        raise PermanentChannelError(Reason.INVALID_RECIPIENT, f"not a possible phone number: {address!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def _too_long(what: str, limit: int, length: int) -> PermanentChannelError:
    return PermanentChannelError(
        Reason.MESSAGE_TOO_LONG, f"{what} is {length} characters; WhatsApp allows at most {limit}"
    )


def message_body(message: OutboundMessage, media: dict[str, str] | None = None) -> dict[str, Any]:
    """The send body. ``media`` is the uploaded attachment (``{"id": ...}`` or ``{"link": ...}``)."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": wa_recipient(message.to),
    }
    text = message.text or ""
    if message.template is not None:
        template: dict[str, Any] = {
            "name": message.template.name,
            "language": {"code": message.template.language},
        }
        if message.template.params:
            template["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": p} for p in message.template.params]}
            ]
        body.update(type="template", template=template)
        return body  # a template is business-initiated: no reply context
    if len(message.attachments) > MEDIA_LIMITS.max_files:
        # One media object per message: sending the first alone would half-send this one.
        raise PermanentChannelError(Reason.CHANNEL_ERROR, "WhatsApp takes one file per message")
    if media is not None and message.attachments:
        attachment = message.attachments[0]
        kind = "image" if attachment.content_type.startswith("image/") else "document"
        if len(text) > MAX_CAPTION:
            raise _too_long("the caption", MAX_CAPTION, len(text))
        obj: dict[str, Any] = dict(media)
        if text:
            obj["caption"] = text
        if kind == "document" and attachment.filename:
            obj["filename"] = attachment.filename
        body.update(type=kind, **{kind: obj})
    elif message.buttons:
        if len(message.buttons) > MAX_BUTTONS:
            raise PermanentChannelError(
                Reason.CHANNEL_ERROR, f"{len(message.buttons)} buttons; WhatsApp allows at most {MAX_BUTTONS}"
            )
        for title in message.buttons:
            if not title.strip() or len(title) > MAX_BUTTON_TITLE:
                raise _too_long(f"button {title!r}", MAX_BUTTON_TITLE, len(title))
        if not text.strip():
            raise PermanentChannelError(Reason.CHANNEL_ERROR, "buttons need a message text")
        if len(text) > MAX_INTERACTIVE_BODY:
            raise _too_long("the text of a message with buttons", MAX_INTERACTIVE_BODY, len(text))
        buttons = [{"type": "reply", "reply": {"id": title, "title": title}} for title in message.buttons]
        body.update(
            type="interactive",
            interactive={"type": "button", "body": {"text": text}, "action": {"buttons": buttons}},
        )
    else:
        if not text.strip():
            raise PermanentChannelError(Reason.CHANNEL_ERROR, "nothing to send: no text, template or image")
        if len(text) > MAX_TEXT:
            raise _too_long("the text", MAX_TEXT, len(text))
        body.update(type="text", text={"preview_url": False, "body": text})
    if message.reply_to_provider_id and message.reply_to_provider_id.startswith("wamid."):
        body["context"] = {"message_id": message.reply_to_provider_id}
    return body


def read_receipt(wamid: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
