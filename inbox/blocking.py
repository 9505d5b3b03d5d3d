"""Contacts who blocked the business on a channel (Telegram's 403 "bot was blocked by the user").

A send that fails with ``blocked_by_user`` marks the conversation's contact in
``attributes["blocked_channels"]`` (channel id → when); the contact's next message on that channel
clears the mark, since writing again means they unblocked us.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.db import Clock
from inbox.inbound import InboundContext
from inbox.model import Reason

ATTRIBUTE = "blocked_channels"


class MarkBlocked:
    """Outbox failure hook: runs in the transaction that marks the message failed."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def __call__(self, session: AsyncSession, message: t.Message) -> None:
        if message.reason != Reason.BLOCKED_BY_USER:
            return
        conversation = await session.get(t.Conversation, message.conversation_id)
        if conversation is None:
            return
        contact = await session.get(t.Contact, conversation.contact_id)
        if contact is None:
            return
        attributes = dict(contact.attributes or {})
        blocked = dict(attributes.get(ATTRIBUTE) or {})
        blocked[str(message.channel_id)] = self._clock().isoformat()
        attributes[ATTRIBUTE] = blocked
        contact.attributes = attributes


async def clear_blocked(session: AsyncSession, ctx: InboundContext) -> None:
    """Inbound hook: a contact who writes on a channel can be reached there again."""
    attributes = dict(ctx.contact.attributes or {})
    blocked = dict(attributes.get(ATTRIBUTE) or {})
    if blocked.pop(str(ctx.channel.id), None) is None:
        return
    if blocked:
        attributes[ATTRIBUTE] = blocked
    else:
        attributes.pop(ATTRIBUTE, None)
    ctx.contact.attributes = attributes
