"""IMAP ingest with aioimaplib: IDLE when the server has it, polling otherwise.

Tracks (UIDVALIDITY, last UID) in the channel's durable state, so a restart or an outage of days
neither re-reads nor misses mail: ``UID SEARCH UID last+1:*`` after every (re)connect. Fetches with
``BODY.PEEK[]`` (no implicit \\Seen) and sets ``\\Seen`` only after the pipeline stored the message;
the pipeline's dedupe on Message-ID makes a crash between storing and saving the UID harmless.

aioimaplib quirks (shared/reference/protocols.md §3, §5): ``IMAP4_SSL`` takes no ``conn_lost_cb`` so
``IMAP4(ssl_context=…)`` is used; ``idle_start`` can hang when the server goes away (#110), so the
wait also races the connection-lost callback and every command runs under a timeout; there is no
reconnect, so each session builds a new client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aioimaplib

from channels.email.config import ImapConfig
from inbox.model import StateStore

_LOGGER = logging.getLogger(__name__)
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_FETCH_UID = re.compile(rb"UID (\d+)")
STATE_KEY = "imap"


class ImapError(Exception):
    pass


class ImapPoller:
    """Runs until cancelled: one session at a time, rebuilt with back-off and jitter when lost."""

    def __init__(
        self,
        cfg: ImapConfig,
        state: StateStore,
        ingest: Callable[[bytes], Awaitable[Any]],
        *,
        label: str = "imap",
    ) -> None:
        self._cfg = cfg
        self._state = state
        self._ingest = ingest
        self._label = label
        self.sessions = 0  # sessions that reached SELECT (tests and health checks read it)
        self.caught_up = asyncio.Event()  # set after each complete fetch pass

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _LOGGER.warning("%s: session ended: %s: %s", self._label, type(exc).__name__, exc)
            failures = 1 if self._healthy else failures + 1
            ceiling = min(self._cfg.reconnect_max, self._cfg.reconnect_min * 2 ** (failures - 1))
            await asyncio.sleep(random.uniform(ceiling / 2, ceiling))  # jitter: no thundering herd

    _healthy = False

    async def _session(self) -> None:
        cfg, t = self._cfg, self._cfg.command_timeout
        self._healthy = False
        lost = asyncio.Event()
        ctx = ssl.create_default_context() if cfg.tls else None
        imap = aioimaplib.IMAP4(
            host=cfg.host, port=cfg.port, timeout=t, ssl_context=ctx, conn_lost_cb=lambda exc: lost.set()
        )
        try:
            await _within(imap.wait_hello_from_server(), t)
            _ok(await _within(imap.login(cfg.user, cfg.password), t), "LOGIN")
            selected = _ok(await _within(imap.select(cfg.folder), t), "SELECT")
            uidvalidity = _uidvalidity(selected.lines)
            saved = await self._state.get(STATE_KEY) or {}
            last_uid = int(saved.get("last_uid", 0))
            if saved.get("uidvalidity") != uidvalidity:
                # RFC 3501 §2.3.1.1: new UIDVALIDITY = every old UID is meaningless; read all again
                # (the pipeline's Message-ID dedupe keeps what we already have from doubling).
                if saved:
                    _LOGGER.warning("%s: UIDVALIDITY changed, re-reading the folder", self._label)
                last_uid = 0
                await self._state.set(STATE_KEY, {"uidvalidity": uidvalidity, "last_uid": 0})
            self._healthy = True
            self.sessions += 1
            use_idle = cfg.use_idle and imap.has_capability("IDLE")
            while not lost.is_set():
                last_uid = await self._fetch_new(imap, uidvalidity, last_uid)
                self.caught_up.set()
                if use_idle:
                    await self._idle(imap, lost)
                else:
                    await _race(asyncio.sleep(cfg.poll_seconds), lost)
                    _ok(await _within(imap.noop(), t), "NOOP")
            raise ImapError("connection lost")
        finally:
            # No LOGOUT: mid-IDLE it would wait for a timeout; closing the socket ends the session.
            for task in list(getattr(imap, "tasks", ())):
                task.cancel()
            transport = getattr(imap.protocol, "transport", None)
            if transport is not None:
                transport.close()

    async def _idle(self, imap: aioimaplib.IMAP4, lost: asyncio.Event) -> None:
        t = self._cfg.command_timeout
        idle = await _within(imap.idle_start(timeout=self._cfg.idle_seconds), t)
        with contextlib.suppress(TimeoutError):  # no news within the IDLE period: re-issue it (RFC 2177)
            await _race(imap.wait_server_push(timeout=self._cfg.idle_seconds + t), lost)
        if lost.is_set():
            idle.cancel()
            return
        imap.idle_done()
        await _within(idle, t)

    async def _fetch_new(self, imap: aioimaplib.IMAP4, uidvalidity: int, last_uid: int) -> int:
        t = self._cfg.command_timeout
        # Without a NOOP some servers (dovecot) miss files dropped into the maildir since SELECT.
        _ok(await _within(imap.noop(), t), "NOOP")
        found = _ok(await _within(imap.uid_search(f"UID {last_uid + 1}:*"), t), "UID SEARCH")
        # "n:*" always matches the highest UID, even when it is below n: filter.
        words = found.lines[0].split() if found.lines else []
        uids = sorted({int(x) for x in words if x.isascii() and x.isdigit()})
        for uid in (u for u in uids if u > last_uid):
            fetched = _ok(await _within(imap.uid("fetch", str(uid), "(BODY.PEEK[])"), t * 4), "UID FETCH")
            raw = _literal(fetched.lines)
            if raw is None:
                _LOGGER.warning("%s: UID %s vanished before FETCH", self._label, uid)
            else:
                await self._ingest(raw)  # returns once stored (or raises: then we retry later)
                _ok(await _within(imap.uid("store", str(uid), "+FLAGS", r"(\Seen)"), t), "STORE")
            last_uid = uid
            await self._state.set(STATE_KEY, {"uidvalidity": uidvalidity, "last_uid": last_uid})
        return last_uid


async def _within(aw: Awaitable[Any], seconds: float) -> Any:
    """``aw`` or TimeoutError after ``seconds``. Not asyncio.wait_for: on 3.11 that swallows a cancel
    arriving just as ``aw`` finishes (CPython gh-86296), and a stopped poller would then run on."""
    async with asyncio.timeout(seconds):
        return await aw


async def _race(aw: Awaitable[Any], lost: asyncio.Event) -> Any:
    """Await ``aw`` unless the connection drops first."""
    main = asyncio.ensure_future(aw)
    dropped = asyncio.ensure_future(lost.wait())
    try:
        done, _ = await asyncio.wait({main, dropped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        dropped.cancel()
        if not main.done():
            main.cancel()
    if main in done:
        return main.result()
    raise ImapError("connection lost")


def _ok(response: Any, what: str) -> Any:
    if getattr(response, "result", None) != "OK":
        raise ImapError(f"{what} failed: {getattr(response, 'lines', response)!r}"[:300])
    return response


def _uidvalidity(lines: list[Any]) -> int:
    for line in lines:
        m = _UIDVALIDITY.search(bytes(line))
        if m:
            return int(m.group(1))
    raise ImapError("SELECT gave no UIDVALIDITY")


def _literal(lines: list[Any]) -> bytes | None:
    """The message bytes of a ``UID FETCH … BODY.PEEK[]`` answer (the literal after the FETCH line)."""
    for i, line in enumerate(lines):
        if isinstance(line, bytearray):
            return bytes(line)
        if i > 0 and isinstance(lines[i - 1], bytes) and lines[i - 1].rstrip().endswith(b"}"):
            return bytes(line)
    return None
