"""A WhatsApp contact's number change (a ``system`` notice) moves their identity to the new number."""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.identities import InvalidAddress, normalize_phone
from inbox.inbound import InboundContext
from inbox.model import ChannelKind

_LOGGER = logging.getLogger(__name__)

NUMBER_CHANGES = frozenset({"user_changed_number", "customer_changed_number"})


async def follow_number_change(session: AsyncSession, ctx: InboundContext) -> None:
    """Readdress the contact's identity and conversations from the old number to the new one.

    A new number that already belongs to another contact is left alone (that is a merge, an agent's
    call) and logged.
    """
    if ctx.channel.kind != ChannelKind.WHATSAPP or ctx.inbound.content_type != "system":
        return
    system = ctx.inbound.raw.get("system")
    if not isinstance(system, dict) or system.get("type") not in NUMBER_CHANGES:
        return
    new_raw = system.get("wa_id") or system.get("new_wa_id")
    try:
        old = normalize_phone(ctx.inbound.sender)
        new = normalize_phone(new_raw) if isinstance(new_raw, str) else None
    except InvalidAddress:
        new = None
    if new is None or new == old:
        return
    owner = await session.scalar(
        select(t.ContactIdentity.contact_id).where(
            t.ContactIdentity.account_id == ctx.channel.account_id,
            t.ContactIdentity.kind == ChannelKind.WHATSAPP,
            t.ContactIdentity.address == new,
        )
    )
    if owner is not None:
        if owner != ctx.contact.id:
            _LOGGER.warning(
                "whatsapp: contact %s changed number to one of contact %s; left for an agent to merge",
                ctx.contact.id,
                owner,
            )
        return
    await session.execute(
        update(t.ContactIdentity)
        .where(
            t.ContactIdentity.account_id == ctx.channel.account_id,
            t.ContactIdentity.kind == ChannelKind.WHATSAPP,
            t.ContactIdentity.address == old,
        )
        .values(address=new)
    )
    # A one-to-one conversation is found by its thread key and answered at its recipient: both are
    # the number.
    for column in (t.Conversation.recipient, t.Conversation.thread_key):
        await session.execute(
            update(t.Conversation)
            .where(t.Conversation.contact_id == ctx.contact.id, column == old)
            .values({column: new})
            .execution_options(synchronize_session="fetch")
        )
    if ctx.contact.phone == old:
        ctx.contact.phone = new
