"""Send bodies and the error-code mapping, without a network."""

from __future__ import annotations

import pytest

from channels.whatsapp.errors import error_for_response
from channels.whatsapp.payloads import message_body
from inbox.model import (
    OutboundMessage,
    PermanentChannelError,
    Reason,
    TemplateRef,
    TransientChannelError,
)


def out(**kw) -> OutboundMessage:
    return OutboundMessage(message_id=1, channel_id=1, to=kw.pop("to", "+55 11 98765-4321"), **kw)


def test_text_reply_with_context_goes_to_the_wa_id():
    body = message_body(out(text="Hello", reply_to_provider_id="wamid.IN"))
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "5511987654321",
        "type": "text",
        "text": {"preview_url": False, "body": "Hello"},
        "context": {"message_id": "wamid.IN"},
    }


def test_template_with_params():
    body = message_body(out(template=TemplateRef(name="order_update", language="en_US", params=("#1234",))))
    assert body["type"] == "template" and "context" not in body
    assert body["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "#1234"}]}],
    }


def test_buttons_become_interactive_reply_buttons():
    body = message_body(out(text="Confirm?", buttons=("Yes", "No")))
    assert body["interactive"] == {
        "type": "button",
        "body": {"text": "Confirm?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "Yes", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "No", "title": "No"}},
            ]
        },
    }


def test_text_limit_is_4096_characters():
    assert message_body(out(text="x" * 4096))["text"]["body"] == "x" * 4096
    with pytest.raises(PermanentChannelError) as err:
        message_body(out(text="x" * 4097))
    assert err.value.reason is Reason.MESSAGE_TOO_LONG


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"text": "pick", "buttons": ("a", "b", "c", "d")}, Reason.CHANNEL_ERROR),
        ({"text": "pick", "buttons": ("this title is far too long",)}, Reason.MESSAGE_TOO_LONG),
        ({"text": "hi", "to": "not a number"}, Reason.INVALID_RECIPIENT),
        ({"text": "hi", "to": "+1"}, Reason.INVALID_RECIPIENT),
    ],
)
def test_refused_before_sending(kw, reason):
    with pytest.raises(PermanentChannelError) as err:
        message_body(out(**kw))
    assert err.value.reason is reason


def graph(code: int, message: str = "boom") -> dict:
    return {
        "error": {
            "message": f"(#{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "x",
        }
    }


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (400, 131047, Reason.WINDOW_CLOSED),
        (400, 131050, Reason.OPTED_OUT),
        (400, 132000, Reason.TEMPLATE_REQUIRED),
        (400, 132001, Reason.TEMPLATE_REQUIRED),
        (400, 131026, Reason.CHANNEL_ERROR),
        (401, 190, Reason.CHANNEL_ERROR),
        (400, 100, Reason.CHANNEL_ERROR),
    ],
)
def test_permanent_error_codes(status, code, reason):
    error = error_for_response(status, graph(code))
    assert isinstance(error, PermanentChannelError)
    assert error.reason is reason and error.provider_code == str(code)


@pytest.mark.parametrize(("status", "body"), [(400, graph(130429)), (500, graph(1)), (503, None), (502, "x")])
def test_transient_errors(status, body):
    error = error_for_response(status, body, retry_after=3)
    assert isinstance(error, TransientChannelError) and error.retry_after == 3


def test_image_with_caption_by_uploaded_id_or_link():
    from inbox.model import Attachment

    image = out(
        text="Your label", attachments=(Attachment(content_type="image/png", url="https://x.test/l.png"),)
    )
    assert message_body(image, {"id": "42"})["image"] == {"id": "42", "caption": "Your label"}
    assert message_body(image, {"link": "https://x.test/l.png"})["image"] == {
        "link": "https://x.test/l.png",
        "caption": "Your label",
    }
    pdf = out(attachments=(Attachment(content_type="application/pdf", filename="invoice.pdf"),))
    assert message_body(pdf, {"id": "43"})["document"] == {"id": "43", "filename": "invoice.pdf"}
