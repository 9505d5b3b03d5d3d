"""``EmailChannel``: the adapter. Inbound mail (from the SMTP server or the IMAP poller) goes through
``ingest``; replies go out with ``send`` through the channel's relay."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from channels.email.config import EmailConfig
from channels.email.imap import ImapPoller
from channels.email.outbound import (
    FileAttachment,
    HeaderInjection,
    Relay,
    build_mail,
    new_message_id,
    send_email,
)
from channels.email.parse import ParsedMail, parse_mail
from channels.email.quoting import trim_reply
from channels.email.sanitize import html_to_text, sanitize_html
from channels.email.threading import (
    ReplyTokens,
    is_forward,
    new_thread_key,
    normalize_subject,
    reply_subject,
    split_plus,
)
from inbox.model import (
    Attachment,
    ChannelInfo,
    ChannelKind,
    DeliveryUpdate,
    InboundMessage,
    InboundSink,
    MessageStatus,
    OutboundMessage,
    PermanentChannelError,
    Reason,
    ReceiveResult,
    SendResult,
    StateStore,
    StatusSink,
)

_LOGGER = logging.getLogger(__name__)
_MSG_ID = re.compile(r"^<[^<>\s]+>$")
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")
MAX_REFERENCES = 20  # RFC 5322 lets us shorten References; keep the root and the newest ids


class Media(Protocol):
    async def put(self, data: bytes) -> str: ...

    async def get(self, key: str) -> bytes: ...


class EmailChannel:
    """One email address: receives via the gateway's SMTP server and/or IMAP, sends via SMTP."""

    kind = ChannelKind.EMAIL

    def __init__(
        self,
        info: ChannelInfo,
        *,
        state: StateStore,
        media: Media,
        mail_domain: str,
        default_relay: str | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.channel_id = info.id
        self.config = EmailConfig.model_validate(dict(info.config))
        self._state = state
        self._media = media
        self._domain = mail_domain
        url = self.config.relay_url or default_relay
        self._relay = Relay.from_url(url, self.config.relay_password) if url else None
        self._clock = clock
        self._sink: InboundSink | None = None
        self._statuses: StatusSink | None = None
        self._tokens: ReplyTokens | None = None
        self.poller: ImapPoller | None = None

    @property
    def address(self) -> str:
        return self.config.address

    async def start(self, sink: InboundSink, statuses: StatusSink) -> None:
        self._sink, self._statuses = sink, statuses
        secret = self.config.reply_token_secret or self.config.webhook_secret
        if not secret:  # a channel made without one: keep a random secret in its durable state
            saved = await self._state.get("reply_token")
            if saved is None:
                saved = {"secret": secrets.token_urlsafe(32)}
                await self._state.set("reply_token", saved)
            secret = str(saved["secret"])
        self._tokens = ReplyTokens(secret)
        if self.config.imap is not None:
            imap = self.config.imap
            if self.config.imap_password:
                imap = imap.model_copy(update={"password": self.config.imap_password})
            self.poller = ImapPoller(imap, self._state, self.ingest, label=f"email channel {self.channel_id}")
        # The poller's loop is ``poll_forever``: the gateway runs it in one process of the cluster.

    @property
    def polling(self) -> bool:
        """Whether this channel has a poll loop to run (an IMAP mailbox)."""
        return self.config.imap is not None

    async def poll_forever(self) -> None:
        """Fetch from the IMAP mailbox until cancelled (the gateway runs this under the cluster lease
        ``poller:<channel id>``, so one process fetches at a time). Runs only after ``start``."""
        if self.poller is not None:
            await self.poller.run()

    async def stop(self) -> None:
        self._sink = None

    # -- inbound -----------------------------------------------------------------------------------

    async def ingest(
        self, raw: bytes, *, mail_from: str | None = None, recipients: Sequence[str] = ()
    ) -> ReceiveResult:
        """Parse and store one message; returns once the pipeline committed it."""
        assert self._sink is not None and self._tokens is not None, "channel not started"
        inbound = await self.to_inbound(raw, mail_from=mail_from, recipients=recipients)
        result = await self._sink(inbound)
        bounce = inbound.raw["email"].get("bounce")
        if bounce and self._statuses is not None and not result.duplicate:
            await self._apply_bounce(bounce)
        return result

    async def _apply_bounce(self, bounce: dict[str, Any]) -> None:
        """A DSN saying our message failed fails it (only ids on our own domain: we minted those)."""
        original = bounce.get("original_message_id") or ""
        if bounce.get("action") != "failed" or not original.endswith(f"@{self._domain}>"):
            return
        status = str(bounce.get("status") or "")
        assert self._statuses is not None
        await self._statuses(
            DeliveryUpdate(
                channel_id=self.channel_id,
                provider_message_id=original,
                status=MessageStatus.FAILED,
                error_code=status or None,
                error_title=(bounce.get("diagnostic") or "bounced")[:200],
                reason=Reason.INVALID_RECIPIENT if status.startswith("5.1.") else Reason.CHANNEL_ERROR,
                raw={"bounce": bounce},
            )
        )

    async def to_inbound(
        self, raw: bytes, *, mail_from: str | None = None, recipients: Sequence[str] = ()
    ) -> InboundMessage:
        assert self._tokens is not None, "channel not started"
        # Parsing a large message takes CPU time: off the event loop, so HTTP and streams stay live.
        mail, full_text, shown, safe_html = await asyncio.to_thread(
            _digest, raw, self.config.allow_remote_images
        )
        try:
            original_key: str | None = await self._media.put(raw)  # the full original, as received
        except ValueError as exc:  # over the media store's limit: keep the parsed parts, say so
            original_key = None
            mail.notes.append(f"original not kept: {exc}")
        sender = _valid_address(mail.sender) or _valid_address(mail_from)
        if sender is None:
            mail.notes.append("no usable sender address")
            sender = "unknown@sender.invalid"
        held = self._held(mail, sender, mail_from)

        thread_key: str | None = None
        signed = False
        for candidate in [*recipients, *mail.delivered_to, *mail.to, *mail.cc]:
            base, tag = split_plus(candidate)
            if tag and base == self.address:
                thread_key = self._tokens.verify(tag)
                if thread_key is not None:
                    signed = True
                    break
        forward = is_forward(mail.subject)
        references: tuple[str, ...] = ()
        if not forward and held not in ("filtered", "spam"):
            # Newest first: In-Reply-To, then References from the right (protocols.md §3).
            ordered = [*mail.in_reply_to, *reversed(mail.references)]
            if mail.bounce is not None and mail.bounce.original_message_id:
                ordered.insert(0, mail.bounce.original_message_id)  # a bounce belongs to its thread
            references = tuple(dict.fromkeys(r for r in ordered if r != mail.message_id))
        if held in ("filtered", "spam"):
            thread_key, signed = f"held:{held}:{sender.lower()}"[:320], False
        elif thread_key is None:
            root = (
                mail.message_id if forward else (mail.references or mail.in_reply_to or [mail.message_id])[0]
            )
            thread_key = new_thread_key(sender, root)

        attachments = []
        for a in mail.attachments:
            if len(a.data) > self.config.max_attachment_bytes:
                mail.notes.append(
                    f"attachment {a.filename or a.content_type} over the size limit, not stored"
                )
                attachments.append(
                    Attachment(content_type=a.content_type, filename=a.filename, size=len(a.data))
                )
            else:
                attachments.append(
                    Attachment(
                        content_type=a.content_type, filename=a.filename, size=len(a.data), data=a.data
                    )
                )
        subject = normalize_subject(mail.subject) or None
        return InboundMessage(
            channel_id=self.channel_id,
            provider_message_id=mail.message_id[:255],
            sender=sender,
            sender_name=(mail.sender_name or None) and mail.sender_name[:200],
            text=shown or (None if attachments else ""),
            attachments=tuple(attachments),
            thread_key=thread_key,
            thread_key_signed=signed,
            references=references,
            subject=None if held else subject,
            held=held,
            content_type="email",
            raw={
                "email": {**_raw_view(mail, full_text, original_key, safe_html), "envelope_to": [*recipients]}
            },
        )

    def _held(self, mail: ParsedMail, sender: str, mail_from: str | None) -> str | None:
        """Why this mail must not open a conversation or wake a bot; None for ordinary mail."""
        cfg = self.config
        # Our own mail coming back (a forwarding rule, a Cc to ourselves): never answer it, or a bot
        # would talk to itself forever.
        if split_plus(sender)[0] == self.address or mail.message_id.endswith(f"@{self._domain}>"):
            return "loop"
        if sender.lower() in cfg.blocked_senders or sender.lower().rpartition("@")[2] in cfg.blocked_domains:
            return "filtered"
        if cfg.spam_header is not None:
            value = mail.all_headers.get(cfg.spam_header.name.lower(), "")
            if value and cfg.spam_header.contains.lower() in value.lower():
                return "spam"
        if mail.automated:
            return mail.automated
        if mail_from == "":  # null reverse-path: DSNs and RFC 3834 auto-responses
            return "bounce"
        return None

    # -- outbound ----------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        assert self._tokens is not None, "channel not started"
        if self._relay is None:
            raise PermanentChannelError(Reason.CHANNEL_ERROR, "no outbound SMTP relay is configured")
        to = _valid_address(message.to)
        if to is None:
            raise PermanentChannelError(Reason.INVALID_RECIPIENT, f"not an email address: {message.to!r}")
        parent = message.reply_to_provider_id if message.reply_to_provider_id else None
        parent = parent if parent and _MSG_ID.match(parent) else None
        refs = [r for r in message.references if _MSG_ID.match(r)]
        if parent and parent not in refs:
            refs.append(parent)
        if len(refs) > MAX_REFERENCES:
            refs = [refs[0], *refs[-(MAX_REFERENCES - 1) :]]
        if parent or refs:
            subject = reply_subject(message.subject)
        else:
            subject = message.subject or f"Message from {self.config.from_name or self.address}"
        reply_to = self._tokens.address(self.address, message.thread_key) if message.thread_key else None
        text = message.text or ""
        if message.template is not None and not text:
            text = " ".join([message.template.name, *message.template.params])
        files = []
        for a in message.attachments:
            if a.media_key is None:
                continue
            files.append(FileAttachment(await self._media.get(a.media_key), a.content_type, a.filename))
        message_id = new_message_id(self._domain)
        try:
            mail = build_mail(
                from_address=self.address,
                from_name=message.sender_name or self.config.from_name,
                to=to,
                subject=subject,
                text=text,
                message_id=message_id,
                in_reply_to=parent or (refs[-1] if refs else None),
                references=refs,
                reply_to=reply_to,
                attachments=files,
                date=self._clock(),
            )
        except (HeaderInjection, ValueError) as exc:
            raise PermanentChannelError(Reason.CHANNEL_ERROR, f"refused to build the mail: {exc}") from exc
        await send_email(mail, self._relay)
        return SendResult(provider_message_id=message_id)


def _valid_address(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value if _ADDRESS.match(value) and len(value) <= 320 else None


def _digest(raw: bytes, remote_images: bool) -> tuple[ParsedMail, str, str, str | None]:
    """Parse, pick the text (from the HTML when there is no text part), trim it, sanitize the HTML."""
    mail = parse_mail(raw)
    full_text = mail.text if mail.text is not None else (html_to_text(mail.html) if mail.html else "")
    shown = trim_reply(full_text) if full_text else ""
    safe_html = sanitize_html(mail.html, allow_remote_images=remote_images) if mail.html else None
    return mail, full_text, shown, safe_html


def _raw_view(
    mail: ParsedMail, full_text: str, original_key: str | None, safe_html: str | None
) -> dict[str, Any]:
    """What the record keeps besides the shown text: headers, the untrimmed text, the sanitized HTML
    and the media key of the original message."""
    return {
        "message_id": mail.message_id,
        "from": mail.sender,
        "from_name": mail.sender_name,
        "to": mail.to,
        "cc": mail.cc,
        "subject": mail.subject,
        "date": mail.date.isoformat() if mail.date else None,
        "in_reply_to": mail.in_reply_to,
        "references": mail.references,
        "headers": mail.headers,
        "automated": mail.automated,
        "text": full_text,
        "html": safe_html,
        "original_media_key": original_key,
        "parse_notes": mail.notes,
        "bounce": dataclasses.asdict(mail.bounce) if mail.bounce else None,
    }
