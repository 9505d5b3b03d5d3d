"""An inbound hook: what the widget told us about the visitor goes on the conversation and the contact.

Runs inside the receiving transaction, for webchat messages only. The page URL, referrer, language
and user agent land in ``conversation.meta["webchat"]`` and ``contact.attributes["webchat"]`` (the
latter shows in the contact API); an email from the pre-chat or offline form becomes the contact's
email if it had none; the chosen chat flow is recorded for routing and bots to act on.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from inbox.identities import InvalidAddress, normalize_email
from inbox.inbound import InboundContext
from inbox.model import ChannelKind

CONTEXT_KEYS = ("page_url", "referrer", "language", "user_agent", "flow", "bot", "time_on_page")


def visitor_context(raw: dict[str, Any]) -> dict[str, Any]:
    """The allowed, bounded part of what the widget sent."""
    out: dict[str, Any] = {}
    for key in CONTEXT_KEYS:
        value = raw.get(key)
        if isinstance(value, str) and value:
            out[key] = value[:500]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = value
    if isinstance(raw.get("verified"), bool):
        out["verified"] = raw["verified"]
    return out


async def record_visitor_context(session: AsyncSession, ctx: InboundContext) -> None:
    if ctx.channel.kind != ChannelKind.WEBCHAT:
        return
    raw = ctx.inbound.raw.get("webchat")
    if not isinstance(raw, dict):
        return
    context = visitor_context(raw)
    if context:
        # Reassign, not mutate: JSON columns only notice a new value.
        ctx.conversation.meta = {**(ctx.conversation.meta or {}), "webchat": context}
        ctx.contact.attributes = {**(ctx.contact.attributes or {}), "webchat": context}
    email = raw.get("email")
    if isinstance(email, str) and email and not ctx.contact.email:
        # The widget validated it already; a bad one is just not kept.
        with contextlib.suppress(InvalidAddress):
            ctx.contact.email = normalize_email(email)
