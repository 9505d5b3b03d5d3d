"""Outbound mail: build a threaded reply and send any ``EmailMessage`` to a relay with aiosmtplib.

``send_email`` is the one SMTP sender: the email channel and the system mailer (quota alerts) both
use it. Relay errors map to the channel errors: 4xx and network trouble → TransientChannelError (the
outbox retries), 5xx → PermanentChannelError with the server's own reason.
"""

from __future__ import annotations

import html
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import unquote, urlsplit

import aiosmtplib

from channels.media import ANY_TYPE, MediaLimits
from inbox.model import PermanentChannelError, Reason, TransientChannelError

MB = 1024 * 1024
# Files of any type; 20 MB together keeps the mail (base64 adds a third) under the common 25 MB cap.
MEDIA_LIMITS = MediaLimits("Email", max_files=10, sizes={ANY_TYPE: 20 * MB}, max_total=20 * MB)


class HeaderInjection(ValueError):
    """A name or subject with CR or LF: it could add headers (Bcc:) to the mail."""


def _safe(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjection(f"{what} contains a line break")
    return value


@dataclass(frozen=True)
class Relay:
    """Where mail goes: ``smtp://[user:pass@]host:port`` (STARTTLS when offered),
    ``smtp+starttls://`` (STARTTLS required) or ``smtps://`` (TLS from the start)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    start_tls: bool | None = None  # None: upgrade when the server offers it

    @classmethod
    def from_url(cls, url: str, password: str | None = None) -> Relay:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
            raise ValueError(f"not an SMTP relay URL: {scheme}://…")
        default_port = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}[scheme]
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            username=unquote(parts.username) if parts.username else None,
            password=password or (unquote(parts.password) if parts.password else None),
            use_tls=scheme == "smtps",
            start_tls=True if scheme == "smtp+starttls" else (False if scheme == "smtps" else None),
        )


async def send_email(message: EmailMessage, relay: Relay | str, *, timeout: float = 30) -> str:  # noqa: ASYNC109
    """Send one message; returns the relay's reply. Raises Transient/PermanentChannelError."""
    target = Relay.from_url(relay) if isinstance(relay, str) else relay
    try:
        refused, reply = await aiosmtplib.send(
            message,
            hostname=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.use_tls,
            start_tls=target.start_tls,
            tls_context=ssl.create_default_context() if (target.use_tls or target.start_tls) else None,
            timeout=timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0] if exc.recipients else None
        code = first.code if first else 550
        raise _mapped(code, first.message if first else str(exc), recipient=True) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise _mapped(exc.code, exc.message) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise TransientChannelError(f"relay unreachable: {type(exc).__name__}: {exc}") from exc
    if refused:
        code, text = next(iter(refused.values()))
        raise _mapped(code, text, recipient=True)
    return reply


def _mapped(code: int, text: str, *, recipient: bool = False) -> Exception:
    detail = f"{code} {text}".strip()
    if 400 <= code < 500 or code < 200:
        return TransientChannelError(detail)
    # 550 5.1.1 / 553 / 501 5.1.3: the mailbox does not exist or the address is bad.
    invalid = recipient or code in (553,) or " 5.1." in f" {text}"
    reason = Reason.INVALID_RECIPIENT if invalid else Reason.CHANNEL_ERROR
    return PermanentChannelError(reason, detail, provider_code=str(code))


@dataclass(frozen=True)
class FileAttachment:
    data: bytes
    content_type: str
    filename: str | None


def new_message_id(domain: str) -> str:
    return make_msgid(domain=domain)


def build_mail(
    *,
    from_address: str,
    from_name: str | None,
    to: str,
    subject: str,
    text: str,
    message_id: str,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    reply_to: str | None = None,
    attachments: Sequence[FileAttachment] = (),
    date: datetime | None = None,
    html_body: str | None = None,
) -> EmailMessage:
    """A multipart text + HTML mail with threading headers. Raises HeaderInjection on CR/LF."""
    msg = EmailMessage()
    msg["From"] = Address(
        display_name=_safe(from_name or "", "sender name"), addr_spec=_safe(from_address, "sender")
    )
    msg["To"] = _safe(to, "recipient")
    msg["Subject"] = _safe(subject, "subject")
    msg["Message-ID"] = _safe(message_id, "Message-ID")
    if date is not None:
        msg["Date"] = format_datetime(date)
    if in_reply_to:
        msg["In-Reply-To"] = _safe(in_reply_to, "In-Reply-To")
    if references:
        msg["References"] = _safe(" ".join(references), "References")
    if reply_to:
        msg["Reply-To"] = _safe(reply_to, "Reply-To")
    # Ask Exchange not to answer with out-of-office notes: part of never looping with auto-replies.
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text)
    msg.add_alternative(html_body if html_body is not None else text_to_html(text), subtype="html")
    for a in attachments:
        maintype, _, subtype = a.content_type.partition("/")
        msg.add_attachment(
            a.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=_safe(a.filename, "file name") if a.filename else None,
        )
    return msg


def text_to_html(text: str) -> str:
    body = "<br>\n".join(html.escape(line) for line in text.split("\n"))
    return f'<!DOCTYPE html><html><body><div style="font-family:sans-serif">{body}</div></body></html>\n'
