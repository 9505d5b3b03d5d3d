"""MIME → ``ParsedMail``. Never raises: what cannot be read is noted in ``notes`` and the rest kept.

``email.policy.default`` gives RFC 2047-decoded headers and ``get_body``/``iter_attachments``
(shared/reference/protocols.md §3). Malformed input produces defects rather than exceptions in most
places, but header access and ``get_content`` can still raise, so each step is guarded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

_MSG_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class MailAttachment:
    content_type: str
    filename: str | None
    data: bytes


@dataclass(frozen=True)
class Bounce:
    """What an RFC 3464 delivery status notification says about a message we sent."""

    original_message_id: str | None
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # e.g. 5.1.1
    diagnostic: str


@dataclass
class ParsedMail:
    message_id: str  # with angle brackets; synthesized from the bytes when missing
    sender: str | None  # the From address, as written
    sender_name: str | None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    delivered_to: list[str] = field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)  # oldest first, as in the header
    text: str | None = None
    html: str | None = None
    attachments: list[MailAttachment] = field(default_factory=list)
    automated: str | None = None  # "auto_reply" | "bounce" | "bulk"
    bounce: Bounce | None = None
    headers: dict[str, str] = field(default_factory=dict)  # the few kept on the record
    all_headers: dict[str, str] = field(default_factory=dict)  # lower-cased name → first value
    notes: list[str] = field(default_factory=list)


def _header(msg: Message, name: str, notes: list[str]) -> str | None:
    try:
        value = msg.get(name)
    except Exception as exc:  # a header the policy cannot parse
        notes.append(f"header {name}: {type(exc).__name__}")
        try:
            raw = msg.get_all(name, failobj=[])
            return str(raw[0]) if raw else None
        except Exception:
            return None
    return None if value is None else str(value)


def _addresses(msg: Message, name: str, notes: list[str]) -> list[str]:
    value = _header(msg, name, notes)
    if not value:
        return []
    try:
        return [addr for _, addr in getaddresses([value]) if "@" in addr]
    except Exception:
        notes.append(f"header {name}: unreadable addresses")
        return []


# After the declared charset (or with none): UTF-8, then the Windows code page most 8-bit mail is in,
# which decodes every byte (so nothing becomes U+FFFD).
FALLBACK_CHARSETS = ("utf-8", "cp1252", "latin-1")


def _decode(payload: bytes, declared: str | None, notes: list[str]) -> str:
    """The declared charset when the bytes are valid in it, else the first fallback that reads them."""
    for charset in (declared, *FALLBACK_CHARSETS) if declared else FALLBACK_CHARSETS:
        try:
            text = payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
        if declared and charset != declared:
            notes.append(f"charset {declared} did not fit; read as {charset}")
        return text
    return payload.decode("utf-8", errors="replace")  # unreachable: latin-1 reads every byte


def _text_of(part: Message, notes: list[str]) -> str | None:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        try:
            declared = part.get_content_charset()
        except Exception:
            declared = None
        return _decode(payload, declared, notes).replace("\r\n", "\n")
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content.replace("\r\n", "\n")
    except Exception as exc:  # broken transfer encoding
        notes.append(f"body {part.get_content_type()}: {type(exc).__name__}")
    return None


def _leaves(part: Message) -> list[Message]:
    """The MIME tree's leaf parts: every multipart/* is opened; a forwarded message/rfc822 is a leaf."""
    if part.get_content_maintype() == "multipart":
        payload = part.get_payload()
        children = payload if isinstance(payload, list) else []
        return [leaf for child in children if isinstance(child, Message) for leaf in _leaves(child)]
    return [part]


def _automated(msg: Message, content_type: str, sender: str | None, notes: list[str]) -> str | None:
    """RFC 3834 Auto-Submitted, Precedence, vendor auto-reply headers and RFC 3464 DSNs."""
    report = (_header(msg, "Content-Type", notes) or "").lower()
    if content_type == "multipart/report" and "delivery-status" in report:
        return "bounce"
    local = (sender or "").split("@")[0].lower()
    if local in ("mailer-daemon", "postmaster"):
        return "bounce"
    auto = (_header(msg, "Auto-Submitted", notes) or "").strip().lower()
    if auto and auto != "no":
        return "auto_reply"
    if any(_header(msg, h, notes) for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return "auto_reply"
    precedence = (_header(msg, "Precedence", notes) or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return "bulk"
    return None


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one message as received. Malformed MIME yields a ParsedMail with ``notes``, never an error."""
    notes: list[str] = []
    try:
        msg = message_from_bytes(raw, policy=policy.default)
    except Exception as exc:  # the parser itself gave up: keep the bytes as text
        fallback = ParsedMail(
            message_id=_synthetic_id(raw),
            sender=None,
            sender_name=None,
            text=raw.decode("utf-8", errors="replace"),
            notes=[f"unparseable MIME: {type(exc).__name__}"],
        )
        return fallback
    for defect in getattr(msg, "defects", [])[:10]:
        notes.append(f"defect: {type(defect).__name__}")

    ids = _MSG_ID.findall(_header(msg, "Message-ID", notes) or "")
    message_id = ids[0] if ids else _synthetic_id(raw)
    if not ids:
        notes.append("no Message-ID; synthesized from the content")
    from_value = _header(msg, "From", notes) or ""
    try:
        name, addr = parseaddr(from_value)
    except Exception:
        name, addr = "", ""
    if "@" not in addr:
        notes.append("From has no address")
        addr = ""
    date = None
    date_value = _header(msg, "Date", notes)
    if date_value:
        try:
            date = parsedate_to_datetime(date_value)
            if date.tzinfo is None:
                date = None
        except Exception:
            notes.append("unreadable Date")
    try:
        content_type = msg.get_content_type()
    except Exception:
        content_type = "text/plain"

    parsed = ParsedMail(
        message_id=message_id,
        sender=addr or None,
        sender_name=name.strip() or None,
        to=_addresses(msg, "To", notes),
        cc=_addresses(msg, "Cc", notes),
        delivered_to=_addresses(msg, "Delivered-To", notes) + _addresses(msg, "X-Original-To", notes),
        subject=" ".join((_header(msg, "Subject", notes) or "").split()),
        date=date,
        in_reply_to=_MSG_ID.findall(_header(msg, "In-Reply-To", notes) or ""),
        references=_MSG_ID.findall(_header(msg, "References", notes) or ""),
        notes=notes,
    )
    parsed.automated = _automated(msg, content_type, parsed.sender, notes)
    for name_ in ("Auto-Submitted", "Precedence", "X-Spam-Flag", "X-Spam-Status", "List-Id", "Thread-Index"):
        value = _header(msg, name_, notes)
        if value:
            parsed.headers[name_] = value[:500]
    try:
        for key, value in msg.raw_items():
            parsed.all_headers.setdefault(key.lower(), " ".join(str(value).split())[:1000])
    except Exception:
        notes.append("headers unreadable")
    _bodies(msg, parsed)
    if content_type == "multipart/report":
        try:
            parsed.bounce = _bounce(msg)
        except Exception as exc:
            notes.append(f"delivery report: {type(exc).__name__}")
    return parsed


def _bounce(msg: EmailMessage) -> Bounce | None:
    action = status = diagnostic = ""
    original: str | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            for block in part.get_payload():
                if isinstance(block, Message) and block.get("Action"):
                    action = str(block.get("Action", "")).strip().lower()
                    status = str(block.get("Status", "")).strip()
                    diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
                    break
        elif ctype == "message/rfc822" and original is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found = _MSG_ID.findall(str(inner[0].get("Message-ID", "")))
                original = found[0] if found else None
        elif ctype == "text/rfc822-headers" and original is None:
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                headers = message_from_bytes(text, policy=policy.default)
                found = _MSG_ID.findall(str(headers.get("Message-ID", "")))
                original = found[0] if found else None
    if not action:
        return None
    return Bounce(original, action, status, diagnostic[:500])


def _bodies(msg: EmailMessage, parsed: ParsedMail) -> None:
    notes = parsed.notes
    try:
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
    except Exception as exc:
        notes.append(f"body structure: {type(exc).__name__}")
        plain = html = None
    if plain is not None:
        parsed.text = _text_of(plain, notes)
    if html is not None:
        parsed.html = _text_of(html, notes)
    if plain is None and html is None and not msg.is_multipart():
        try:
            if msg.get_content_maintype() == "text":
                parsed.text = _text_of(msg, notes)
        except Exception:
            notes.append("body unreadable")
    # Attachments are exactly the leaves that are not the chosen bodies: parts without a
    # Content-Disposition, inline images and binary parts deep in nested multiparts included.
    try:
        parts = [
            leaf
            for leaf in _leaves(msg)
            if leaf is not plain and leaf is not html and not (leaf is msg and parsed.text is not None)
        ]
    except Exception as exc:
        notes.append(f"attachments: {type(exc).__name__}")
        parts = []
    for part in parts:
        try:
            data = part.get_payload(decode=True)
            if part.is_multipart() or not isinstance(data, bytes):
                # e.g. message/rfc822 (forwarded mail, DSN originals): keep it as a .eml file
                data = part.as_bytes() if part.is_multipart() else bytes(str(part.get_payload()), "utf-8")
            parsed.attachments.append(MailAttachment(part.get_content_type(), part.get_filename(), data))
        except Exception as exc:
            notes.append(f"attachment: {type(exc).__name__}")


def _synthetic_id(raw: bytes) -> str:
    return f"<sha256-{hashlib.sha256(raw).hexdigest()[:40]}@switchboard.invalid>"
