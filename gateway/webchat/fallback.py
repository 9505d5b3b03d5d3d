"""Offline chat replies go by email: an agent's answer that no open chat tab received is sent, through
the outbox like every message, to the email the visitor left (pre-chat or offline form), on the
inbox's email channel. The chat conversation gets an activity line saying so.

Embedded mode knows every open tab; in a cluster a tab on another gateway process is not seen here,
so a reply may also be emailed to a visitor who is still reading it there.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from inbox import tables as t
from inbox.conversations import add_activity, find_or_open_conversation
from inbox.i18n import account_language, translator
from inbox.identities import InvalidAddress, normalize_email
from inbox.model import ChannelKind, MessageKind, OutboundMessage
from inbox.outbox import Draft

if TYPE_CHECKING:  # the container builds this fallback
    from gateway.container import Container

_LOGGER = logging.getLogger(__name__)


class EmailFallback:
    def __init__(self, container: Container) -> None:
        self._c = container

    async def __call__(self, message: OutboundMessage) -> None:
        try:
            await self._send(message)
        except Exception:  # the chat reply itself is stored and sent; only the copy failed
            _LOGGER.exception("emailing offline chat reply %s failed", message.message_id)

    async def _send(self, message: OutboundMessage) -> None:
        c = self._c
        now = c.clock()
        async with c.db.write() as session:
            reply = await session.get(t.Message, message.message_id)
            if reply is None or reply.kind != MessageKind.OUTGOING or not reply.text:
                return
            chat = await session.get(t.Conversation, reply.conversation_id)
            assert chat is not None
            contact = await session.get(t.Contact, chat.contact_id)
            if contact is None or not contact.email:
                return
            try:
                address = normalize_email(contact.email)
            except InvalidAddress:
                return
            email_channel = await session.scalar(
                select(t.Channel)
                .where(t.Channel.account_id == chat.account_id, t.Channel.kind == ChannelKind.EMAIL)
                .order_by((t.Channel.inbox_id != chat.inbox_id), t.Channel.id)  # same inbox first
                .limit(1)
            )
            if email_channel is None:
                return
            identity = await session.scalar(
                select(t.ContactIdentity).where(
                    t.ContactIdentity.account_id == chat.account_id,
                    t.ContactIdentity.kind == ChannelKind.EMAIL,
                    t.ContactIdentity.address == address,
                )
            )
            if identity is None:  # the visitor's email becomes this contact's email identity
                session.add(
                    t.ContactIdentity(
                        account_id=chat.account_id,
                        kind=ChannelKind.EMAIL,
                        address=address,
                        contact_id=contact.id,
                    )
                )
                await session.flush()
            contact_id = identity.contact_id if identity is not None else contact.id
            conversation, _ = await find_or_open_conversation(
                session, email_channel, contact_id, address, now
            )
            inbox = await session.get(t.InboxRow, chat.inbox_id)
            tr = translator(await account_language(session, chat.account_id))  # the visitor reads it
            subject = (
                tr.gettext("Your chat with {inbox}", inbox=inbox.name)
                if inbox
                else tr.gettext("Your chat with us")
            )
            view = await c.outbox.submit(
                Draft(
                    conversation_id=conversation.id,
                    text=reply.text,
                    author_id=reply.author_id,
                    origin="agent",
                    subject=subject,
                ),
                session=session,
            )
            await add_activity(
                session, chat, f"The visitor had left; the reply was emailed to {address}", now, None
            )
        await c.outbox.enqueue_if_queued(view)
