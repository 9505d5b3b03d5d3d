"""Inbound SMTP: aiosmtpd inside the gateway's own event loop (``loop.create_server``, never the
threaded Controller), with an explicit hostname (no blocking ``getfqdn``, aiosmtpd #178) and a size
limit (aiosmtpd answers ``552`` itself).

Accepts mail for every email channel's address (and ``address+token``) and for each inbox's fallback
address ``inbox-<id>@<mail domain>``; anything else gets ``550 5.1.1`` at RCPT. ``250`` is answered
only after the pipeline stored the message, so an acknowledged mail is never lost; a failure to store
answers ``451`` and the sending server tries again.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import ssl
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import select

from channels.email.adapter import EmailChannel
from channels.email.threading import split_plus
from gateway.adapters import AdapterRegistry
from inbox import tables as t
from inbox.db import Clock, Database
from inbox.model import ChannelKind

_LOGGER = logging.getLogger(__name__)
_FALLBACK = re.compile(r"^inbox-(\d{1,18})$")


class MailRouter:
    """Maps a recipient address to the email channel that receives it."""

    def __init__(self, db: Database, clock: Clock, mail_domain: str) -> None:
        self._db = db
        self._clock = clock
        self._domain = mail_domain.lower()

    async def channel_for(self, address: str) -> int | None:
        base, _tag = split_plus(address)
        local, _, domain = base.rpartition("@")
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    select(t.Channel.id, t.Channel.inbox_id, t.Channel.config)
                    .where(t.Channel.kind == ChannelKind.EMAIL)
                    .order_by(t.Channel.id)
                )
            ).all()
        for channel_id, _inbox, config in rows:
            if str((config or {}).get("address", "")).strip().lower() == base:
                return int(channel_id)
        fallback = _FALLBACK.match(local)
        if fallback is None or domain != self._domain:
            return None
        inbox_id = int(fallback.group(1))
        for channel_id, inbox, _config in rows:
            if inbox == inbox_id:
                return int(channel_id)
        return await self._fallback_channel(inbox_id, base)

    async def _fallback_channel(self, inbox_id: int, address: str) -> int | None:
        """An inbox without an email channel still has its address: make its channel on first mail."""
        async with self._db.write() as session:
            inbox = await session.get(t.InboxRow, inbox_id)
            if inbox is None:
                return None
            channel = t.Channel(
                account_id=inbox.account_id,
                inbox_id=inbox.id,
                kind=ChannelKind.EMAIL,
                name=f"{inbox.name} email",
                config={"address": address},
                created_at=self._clock(),
            )
            session.add(channel)
            await session.flush()
            return int(channel.id)


class InboundHandler:
    """aiosmtpd hooks (duck-typed ``handle_*`` methods)."""

    def __init__(self, router: MailRouter, adapters: AdapterRegistry) -> None:
        self._router = router
        self._adapters = adapters

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        try:
            channel_id = await self._router.channel_for(address)
        except Exception:
            _LOGGER.exception("recipient lookup failed")
            return "451 4.3.0 Temporary failure, try again later"
        if channel_id is None:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        routes: dict[str, int] = getattr(envelope, "switchboard_routes", {})
        routes[address] = channel_id
        envelope.switchboard_routes = routes  # type: ignore[attr-defined]
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        routes: dict[str, int] = getattr(envelope, "switchboard_routes", {})
        by_channel: dict[int, list[str]] = defaultdict(list)
        for rcpt in envelope.rcpt_tos:
            by_channel[routes[rcpt]].append(rcpt)
        mail_from = envelope.mail_from if envelope.mail_from not in (None, "<>") else ""
        try:
            for channel_id, rcpts in by_channel.items():
                adapter = await self._adapters.get(channel_id)
                if not isinstance(adapter, EmailChannel):
                    return "451 4.3.0 Mailbox not ready, try again later"
                await adapter.ingest(raw, mail_from=mail_from, recipients=rcpts)
        except Exception:
            _LOGGER.exception("storing inbound mail failed")
            return "451 4.3.0 Could not store the message, try again later"
        return "250 2.0.0 OK: stored"


@dataclass(frozen=True)
class SmtpSecurity:
    """Optional STARTTLS and AUTH for inbound SMTP (off by default, like a plain MX)."""

    tls_cert: Path | None = None
    tls_key: Path | None = None
    require_tls: bool = False
    auth_user: str | None = None
    auth_password: str | None = field(default=None, repr=False)

    def tls_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    def authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """Constant-time check of LOGIN/PLAIN credentials. A failure must say ``handled=False``, else
        aiosmtpd sends nothing and the client hangs (protocols.md §3)."""
        if not isinstance(data, LoginPassword) or self.auth_user is None or self.auth_password is None:
            return AuthResult(success=False, handled=False)
        user_ok = hmac.compare_digest(data.login, self.auth_user.encode())
        password_ok = hmac.compare_digest(data.password, self.auth_password.encode())
        return AuthResult(success=user_ok and password_ok, handled=False)


class SmtpServer:
    """Starts and stops the listener; ``port`` is the bound port (tests ask for port 0)."""

    def __init__(
        self,
        db: Database,
        adapters: AdapterRegistry,
        clock: Clock,
        *,
        host: str,
        port: int,
        hostname: str,
        mail_domain: str,
        max_bytes: int,
        security: SmtpSecurity | None = None,
    ) -> None:
        self._security = security or SmtpSecurity()
        self.handler = InboundHandler(MailRouter(db, clock, mail_domain), adapters)
        self._host, self._port = host, port
        self._hostname = hostname
        self._max_bytes = max_bytes
        self._server: asyncio.base_events.Server | None = None
        self.port = port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        security = self._security
        tls = security.tls_context()  # reads the key files: here, not in the constructor
        auth = security.auth_user is not None and security.auth_password is not None

        def factory() -> Any:
            return SMTP(
                self.handler,
                hostname=self._hostname,
                data_size_limit=self._max_bytes,
                enable_SMTPUTF8=True,
                ident="Switchboard ESMTP",
                tls_context=tls,
                require_starttls=security.require_tls and tls is not None,
                authenticator=security.authenticator if auth else None,
                auth_required=auth,
                # With TLS on offer, passwords only travel encrypted; without it (a loopback relay) AUTH
                # would otherwise never be advertised (aiosmtpd #283).
                auth_require_tls=tls is not None,
            )

        self._server = await loop.create_server(factory, self._host, self._port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        _LOGGER.info("SMTP listening on %s:%s", self._host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
