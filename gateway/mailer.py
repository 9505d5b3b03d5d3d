"""System mail through an SMTP relay (``SWITCHBOARD_SMTP_URL``): the ``inbox.mail.Mailer`` port.

URL forms: ``smtp://host:port`` (STARTTLS if the server offers it), ``smtp+starttls://`` (required),
``smtps://`` (implicit TLS); ``user:password@`` for AUTH; ``?from=alerts@example.com`` for the sender.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib


class SmtpMailer:
    def __init__(self, url: str, *, sender: str | None = None, timeout: float = 30) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps", "smtp+starttls"):
            raise ValueError(
                f"SWITCHBOARD_SMTP_URL must be smtp://, smtps:// or smtp+starttls://, not {url!r}"
            )
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self._tls = parts.scheme == "smtps"
        self._starttls: bool | None = True if parts.scheme == "smtp+starttls" else None
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        query = parse_qs(parts.query)
        self.sender = sender or (query.get("from") or [f"switchboard@{self._host}"])[0]
        self._timeout = timeout

    async def send(self, to: Sequence[str], subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain="switchboard.local")
        message.set_content(text)
        await aiosmtplib.send(
            message,
            sender=self.sender,
            recipients=list(to),
            hostname=self._host,
            port=self._port,
            username=self._user,
            password=self._password,
            use_tls=self._tls,
            start_tls=self._starttls,
            timeout=self._timeout,
            local_hostname="switchboard.local",  # skip socket.getfqdn(), which can block the loop
        )
