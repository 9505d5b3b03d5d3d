"""Tickets opened by mail: a new conversation from mail to an inbox's fallback address ``inbox-<id>@``
opens a ticket, when the inbox is set to (``inboxes.settings["tickets_from_mail"]``).

Only the fallback address does it (the envelope recipient, so a Bcc counts and a quoted To does not):
the inbox's own channel addresses stay ordinary conversations. A reply in the same thread adds to the
conversation, not a second ticket; auto-replies, bounces and filtered mail run no hooks, so open none.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.inbound import InboundContext
from inbox.model import ChannelKind
from inbox.tickets import TicketFields, create_ticket

SETTING = "tickets_from_mail"
TITLE_MAX = 300  # tickets.title
NO_SUBJECT = "(no subject)"


def fallback_address(inbox_id: int, mail_domain: str) -> str:
    return f"inbox-{inbox_id}@{mail_domain.lower()}"


def _base(address: str) -> str:
    """The address without a ``+tag`` and in lower case, as the SMTP router matches it."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


class TicketsFromMail:
    """Inbound hook, after routing: the ticket's owner is whoever the conversation was given to."""

    def __init__(self, mail_domain: str) -> None:
        self._domain = mail_domain

    async def __call__(self, session: AsyncSession, ctx: InboundContext) -> None:
        inbox = ctx.inbox
        if ctx.channel.kind != ChannelKind.EMAIL or not ctx.new_conversation or inbox is None:
            return
        if not (inbox.settings or {}).get(SETTING):
            return
        envelope = (ctx.inbound.raw.get("email") or {}).get("envelope_to") or []
        fallback = fallback_address(inbox.id, self._domain)
        if not any(_base(str(r)) == fallback for r in envelope):
            return
        account = await session.get(t.Account, inbox.account_id)
        assert account is not None
        title = (ctx.inbound.subject or "").strip() or NO_SUBJECT
        await create_ticket(
            session,
            account,
            inbox.id,
            TicketFields(
                title=title[:TITLE_MAX],
                description=ctx.message.text or "",
                owner_id=ctx.conversation.assignee_id,
                contact_id=ctx.contact.id,
                conversation_ids=[ctx.conversation.id],
            ),
            actor_id=None,
            now=ctx.now,
        )
