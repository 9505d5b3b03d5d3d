"""System mail (quota alerts, notifications) through the relay ``SWITCHBOARD_SMTP_URL``: the
``inbox.mail.Mailer`` port, sent with the email channel's own sender so both share one SMTP client,
one header-safety check and one error mapping.

URL forms: ``smtp://host:port`` (STARTTLS if offered), ``smtp+starttls://``, ``smtps://``;
``user:password@`` for AUTH; ``?from=alerts@example.com`` for the sender address.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from channels.email.outbound import Relay, build_mail, new_message_id, send_email


class SmtpMailer:
    def __init__(self, url: str, *, mail_domain: str = "switchboard.local", timeout: float = 30) -> None:
        self._relay = Relay.from_url(url)  # raises ValueError on a URL that is not SMTP
        query = parse_qs(urlsplit(url).query)
        self.sender = (query.get("from") or [f"switchboard@{mail_domain}"])[0]
        self._domain = mail_domain
        self._timeout = timeout

    async def send(self, to: Sequence[str], subject: str, text: str) -> None:
        message = build_mail(
            from_address=self.sender,
            from_name="Switchboard",
            to=", ".join(to),
            subject=subject,
            text=text,
            message_id=new_message_id(self._domain),
            date=datetime.now(UTC),
        )
        # System mail is automatic: auto-responders must not answer it (RFC 3834).
        message["Auto-Submitted"] = "auto-generated"
        await send_email(message, self._relay, timeout=self._timeout)
