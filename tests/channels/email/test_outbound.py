"""The SMTP sender against real aiosmtpd servers: 4xx retries, 5xx fails with the server's reason,
header injection is refused; reply tokens cannot be forged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from channels.email.outbound import HeaderInjection, Relay, build_mail, send_email
from channels.email.threading import ReplyTokens, normalize_subject, reply_subject
from inbox.model import OutboundMessage, PermanentChannelError, Reason, TransientChannelError
from tests.channels.email.conftest import parsed
from tests.channels.email.test_parse import _channel


def _mail(**kw: Any) -> EmailMessage:
    args = dict(
        from_address="support@mail.test",
        from_name="Support",
        to="ann@example.org",
        subject="Hi",
        text="hello",
        message_id="<m1@mail.test>",
    )
    return build_mail(**{**args, **kw})


class Answers:
    def __init__(self, rcpt: str | None = None, data: str | None = None):
        self.rcpt, self.data = rcpt, data

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.rcpt:
            return self.rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return self.data or "250 OK"


async def relay(handler) -> tuple[asyncio.base_events.Server, str]:
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="relay.test"), "127.0.0.1", 0
    )
    return server, f"smtp://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize(
    ("handler", "error", "reason"),
    [
        (Answers(rcpt="450 4.2.1 Mailbox busy, try later"), TransientChannelError, None),
        (Answers(data="451 4.3.0 Local problem"), TransientChannelError, None),
        (Answers(rcpt="550 5.1.1 User unknown"), PermanentChannelError, Reason.INVALID_RECIPIENT),
        (Answers(data="554 5.7.1 Message rejected as spam"), PermanentChannelError, Reason.CHANNEL_ERROR),
    ],
)
async def test_relay_answers_map_to_retry_or_failure_with_the_reason(handler, error, reason):
    server, url = await relay(handler)
    try:
        with pytest.raises(error) as caught:
            await send_email(_mail(), url)
        text = str(caught.value)
        assert (handler.rcpt or handler.data).split(" ", 2)[2] in text  # the server's own words
        if reason is not None:
            assert caught.value.reason == reason
    finally:
        server.close()
        await server.wait_closed()


async def test_unreachable_relay_is_transient():
    from tests.services import free_port

    with pytest.raises(TransientChannelError):
        await send_email(_mail(), f"smtp://127.0.0.1:{free_port()}", timeout=2)


async def test_sent_mail_is_multipart_with_attachments(smtp_sink):
    from channels.email.outbound import FileAttachment

    msg = _mail(
        attachments=[FileAttachment(b"\x89PNG..", "image/png", "shot.png")],
        in_reply_to="<p@x>",
        references=["<r@x>", "<p@x>"],
        reply_to="support+tok@mail.test",
    )
    await send_email(msg, f"smtp://127.0.0.1:{smtp_sink.port}")
    got = parsed((await smtp_sink.wait_for(1))[0])
    assert got.get_content_type() == "multipart/mixed"
    assert got.get_body(("plain",)).get_content().strip() == "hello"  # type: ignore[union-attr]
    assert got.get_body(("html",)) is not None
    [png] = list(got.iter_attachments())
    assert png.get_filename() == "shot.png" and png.get_content() == b"\x89PNG.."
    assert got["References"] == "<r@x> <p@x>" and got["Reply-To"] == "support+tok@mail.test"


@pytest.mark.parametrize("field", ["subject", "from_name", "to"])
def test_cr_lf_in_names_or_subjects_is_refused(field):
    for evil in ("Hi\r\nBcc: victim@example.org", "Hi\nBcc: x@y", "Hi\rX: y"):
        with pytest.raises(HeaderInjection):
            _mail(**{field: evil})


async def test_adapter_refuses_injected_subject_permanently():
    channel = _channel()
    channel._relay = Relay("127.0.0.1", 9)  # never reached
    await channel.start(None, None)  # type: ignore[arg-type]
    with pytest.raises(PermanentChannelError):
        await channel.send(
            OutboundMessage(
                message_id=1,
                channel_id=7,
                to="ann@example.org",
                text="x",
                subject="Hello\r\nBcc: all@example.org",
            )
        )
    with pytest.raises(PermanentChannelError) as bad:
        await channel.send(
            OutboundMessage(message_id=1, channel_id=7, to="ann@example.org\r\nBcc: x@y", text="x")
        )
    assert bad.value.reason == Reason.INVALID_RECIPIENT


def test_relay_urls():
    assert Relay.from_url("smtp://u%40x:p%3Aw@mx.test:2525") == Relay("mx.test", 2525, "u@x", "p:w")
    assert Relay.from_url("smtps://mx.test").use_tls and Relay.from_url("smtps://mx.test").port == 465
    assert Relay.from_url("smtp+starttls://mx.test").start_tls is True
    with pytest.raises(ValueError):
        Relay.from_url("http://mx.test")


def test_reply_tokens_verify_and_resist_forgery():
    tokens = ReplyTokens("channel-secret")
    token = tokens.make("m:0123456789abcdef0123")
    assert tokens.verify(token) == "m:0123456789abcdef0123"
    assert tokens.verify(token.upper()) == "m:0123456789abcdef0123"  # servers that change case
    assert ReplyTokens("other-secret").verify(token) is None
    body, tag = token.split("-")
    other = tokens.make("m:ffffffffffffffffffff").split("-")[0]
    assert tokens.verify(f"{other}-{tag}") is None  # a tag from another key
    assert tokens.verify("garbage") is None and tokens.verify("-") is None and tokens.verify("!!-!!") is None
    address = tokens.address("support@demo.switchboard.test", "m:0123456789abcdef0123")
    assert address is not None and len(address.split("@")[0]) <= 64
    assert tokens.address("support@x.test", "x" * 200) is None  # would break RFC 5321's limit


def test_subjects():
    assert normalize_subject("Re: AW: RE[2]: Sv:  Order   1234") == "Order 1234"
    assert normalize_subject("Fwd: Re: Order") == "Fwd: Re: Order"
    assert reply_subject("Re: Re: Order") == "Re: Order"
    assert reply_subject("Order") == "Re: Order"


def test_date_header_is_set():
    msg = _mail(date=datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    assert msg["Date"] == "Tue, 10 Mar 2026 12:00:00 +0000"
