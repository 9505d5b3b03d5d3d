"""Consent per (contact, channel): keywords, manual changes, history, and the outbox policy (DESIGN.md §3).

Channel config keys: ``consent`` (bool; default true on WhatsApp) turns keyword handling and the opt-in
requirement on; ``opt_in_keywords`` / ``opt_out_keywords`` / ``help_keywords`` (lists) replace the
defaults; ``opt_in_text`` / ``opt_out_text`` / ``help_text`` are the replies; ``click_to_chat_url``
(with ``{number}`` and ``{text}``) overrides the wa.me opt-in link.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.folding import fold
from inbox.i18n import N_, Translator, account_language, translator
from inbox.inbound import InboundContext
from inbox.model import ChannelKind, MessageKind, Reason
from inbox.outbox import Draft, Outbox, Refusal, SendContext
from inbox.windows import has_service_window, window_open_for


class ConsentStatus(StrEnum):
    UNKNOWN = "unknown"
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class ConsentSource(StrEnum):
    KEYWORD = "keyword"
    AGENT = "agent"
    API = "api"
    IMPORT = "import"


class Keyword(StrEnum):
    OPT_IN = "opt_in"
    OPT_OUT = "opt_out"
    HELP = "help"


DEFAULT_KEYWORDS: dict[Keyword, tuple[str, ...]] = {
    Keyword.OPT_OUT: (
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "PARAR",
        "SAIR",
        "CANCELAR",
        "DESCADASTRAR",
    ),
    Keyword.OPT_IN: ("START", "YES", "UNSTOP", "SUBSCRIBE", "SIM", "ACEITO", "QUERO", "INICIAR"),
    Keyword.HELP: ("HELP", "INFO", "AJUDA"),
}
# English msgids, said in the account's language (inbox.i18n) unless the channel sets its own text.
DEFAULT_TEXTS: dict[Keyword, str] = {
    Keyword.OPT_OUT: N_(
        "You are unsubscribed and will get no more messages. Reply START to subscribe again."
    ),
    Keyword.OPT_IN: N_("You are subscribed. Reply STOP to unsubscribe, HELP for help."),
    Keyword.HELP: N_(
        "Reply STOP to unsubscribe or START to subscribe. An agent will also read your message."
    ),
}


def normalize_keyword(text: str) -> str:
    """Trim, case-fold and strip accents: ``" PARÁR "`` → ``"parar"`` (the one folding, inbox.folding)."""
    return fold(text)


def consent_enabled(channel: t.Channel) -> bool:
    value = (channel.config or {}).get("consent")
    return channel.kind == ChannelKind.WHATSAPP if value is None else bool(value)


def keywords_of(config: dict[str, Any] | None) -> Mapping[Keyword, frozenset[str]]:
    """The channel's keyword lists, folded. Cached per distinct lists: every inbound text asks."""
    config = config or {}
    lists = tuple(
        tuple(str(w) for w in config.get(f"{kind.value}_keywords") or defaults)
        for kind, defaults in DEFAULT_KEYWORDS.items()
    )
    return _folded_keywords(lists)


@functools.lru_cache(maxsize=256)
def _folded_keywords(lists: tuple[tuple[str, ...], ...]) -> Mapping[Keyword, frozenset[str]]:
    folded = {
        kind: frozenset(word for word in map(normalize_keyword, words) if word)
        for kind, words in zip(DEFAULT_KEYWORDS, lists, strict=True)
    }
    return MappingProxyType(folded)  # shared by every caller: read-only


def match_keyword(text: str | None, config: dict[str, Any] | None) -> Keyword | None:
    """The keyword the whole message is, if any ("stop please" is none). Opt-out wins a tie."""
    if not text:
        return None
    word = normalize_keyword(text)
    table = keywords_of(config)
    for kind in (Keyword.OPT_OUT, Keyword.OPT_IN, Keyword.HELP):
        if word in table[kind]:
            return kind
    return None


def reply_text(config: dict[str, Any] | None, kind: Keyword, tr: Translator | None = None) -> str:
    """The channel's own confirmation text, else the default in ``tr``'s language (English without one)."""
    text = (config or {}).get(f"{kind.value}_text")
    if text:
        return str(text)
    return tr.gettext(DEFAULT_TEXTS[kind]) if tr else DEFAULT_TEXTS[kind]


def opt_in_link(channel: t.Channel) -> str | None:
    """A click-to-chat link that pre-fills the opt-in keyword (wa.me for WhatsApp numbers)."""
    config = channel.config or {}
    keyword = (config.get("opt_in_keywords") or DEFAULT_KEYWORDS[Keyword.OPT_IN])[0]
    number = str(config.get("display_phone_number") or "")
    digits = "".join(c for c in number if c.isdigit())
    template = config.get("click_to_chat_url")
    if template:
        return str(template).format(number=digits, text=quote(str(keyword)))
    if channel.kind == ChannelKind.WHATSAPP and digits:
        return f"https://wa.me/{digits}?text={quote(str(keyword))}"
    return None


# -- state and history --------------------------------------------------------------------------------


_CONSENT = t.ConsentState.__table__.c  # a Core select: no ORM object wanted, half the cost
_STATE = select(_CONSENT.state).where(
    _CONSENT.contact_id == bindparam("contact_id"), _CONSENT.channel_id == bindparam("channel_id")
)  # run for every message in and out: built once (see inbox/inbound.py)


async def consent_of(session: AsyncSession, contact_id: int, channel_id: int) -> ConsentStatus:
    state = await session.scalar(_STATE, {"contact_id": contact_id, "channel_id": channel_id})
    return ConsentStatus(state) if state else ConsentStatus.UNKNOWN


async def set_consent(
    session: AsyncSession,
    *,
    account_id: int,
    contact_id: int,
    channel_id: int,
    state: ConsentStatus,
    source: ConsentSource,
    evidence: str | None,
    now: datetime,
) -> bool:
    """Record a consent change with its history row. Returns False (and writes nothing) if unchanged."""
    row = await session.scalar(
        select(t.ConsentState).where(
            t.ConsentState.contact_id == contact_id, t.ConsentState.channel_id == channel_id
        )
    )
    previous = ConsentStatus(row.state) if row else ConsentStatus.UNKNOWN
    if previous == state:
        return False
    if row is None:
        session.add(
            t.ConsentState(
                account_id=account_id,
                contact_id=contact_id,
                channel_id=channel_id,
                state=state,
                updated_at=now,
            )
        )
    else:
        row.state = state
        row.updated_at = now
    session.add(
        t.ConsentChange(
            account_id=account_id,
            contact_id=contact_id,
            channel_id=channel_id,
            previous=previous,
            state=state,
            source=source,
            evidence=evidence,
            created_at=now,
        )
    )
    await session.flush()
    return True


async def has_written_on(session: AsyncSession, contact_id: int, channel_id: int) -> bool:
    """Whether the contact ever sent a message on this channel (needed for a manual opt-in)."""
    found = await session.scalar(
        select(
            exists().where(
                t.Message.channel_id == channel_id,
                t.Message.kind == MessageKind.INCOMING,
                t.Message.conversation_id == t.Conversation.id,
                t.Conversation.contact_id == contact_id,
            )
        )
    )
    return bool(found)


# -- the outbox policy and the inbound hook -----------------------------------------------------------


class ConsentPolicy:
    """Business-initiated sends (or any send outside the window) need opted_in; replies in it do not."""

    async def check(self, session: AsyncSession, ctx: SendContext) -> Refusal | None:
        if not consent_enabled(ctx.channel):
            return None
        business = ctx.draft.business_initiated
        if not business and has_service_window(ctx.channel):
            business = not await window_open_for(session, ctx)
        if not business:
            return None
        state = await consent_of(session, ctx.conversation.contact_id, ctx.channel.id)
        if state == ConsentStatus.OPTED_OUT:
            return Refusal(Reason.OPTED_OUT, "the contact opted out on this channel")
        if state != ConsentStatus.OPTED_IN:
            return Refusal(Reason.NOT_OPTED_IN, "the contact has not opted in on this channel")
        return None


class KeywordHook:
    """Inbound hook: opt-in / opt-out / help keywords. The message itself still lands in the inbox;
    the confirmation goes through the outbox after the commit, one per change."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def __call__(self, session: AsyncSession, ctx: InboundContext) -> None:
        # Only words the contact typed count: a tapped button titled "Yes" answers a question, it is not
        # an opt-in (WhatsApp's own "Stop promotions" template button is WhatsApp's to handle).
        if not consent_enabled(ctx.channel) or ctx.inbound.content_type != "text":
            return
        config = ctx.channel.config or {}
        keyword = match_keyword(ctx.inbound.text, config)
        if keyword is None:
            return
        if keyword != Keyword.HELP:
            changed = await set_consent(
                session,
                account_id=ctx.channel.account_id,
                contact_id=ctx.contact.id,
                channel_id=ctx.channel.id,
                state=ConsentStatus.OPTED_IN if keyword == Keyword.OPT_IN else ConsentStatus.OPTED_OUT,
                source=ConsentSource.KEYWORD,
                evidence=f"message:{ctx.message.id}",
                now=ctx.now,
            )
            if not changed:
                return
        tr = translator(await account_language(session, ctx.channel.account_id))
        text = reply_text(config, keyword, tr)
        draft = Draft(conversation_id=ctx.conversation.id, text=text, origin="system")
        outbox = self._outbox

        async def confirm() -> None:
            await outbox.submit(draft)

        ctx.after_commit.append(confirm)
