"""The plan's contact limit: contacts past it (by capture order) are kept and shown, but sent nothing.

Capture order is the contact id. A contact is over the limit when more than ``contact_limit``
contacts of its account were captured before or with it. Replies to a contact who wrote are still
allowed; business-initiated sends (broadcasts, automations, POST /messages) are refused with the
reason ``contact_limit``.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.db import first_row_once
from inbox.model import Reason
from inbox.outbox import Refusal, SendContext

_LIMIT = select(t.Account.contact_limit).where(t.Account.id == bindparam("account_id"))
# The id of the last contact inside the limit: ids above it are over the limit.
_LAST_INSIDE = (
    select(t.Contact.id)
    .where(t.Contact.account_id == bindparam("account_id"))
    .order_by(t.Contact.id)
    .offset(bindparam("offset"))
    .limit(1)
)


async def last_contact_inside(session: AsyncSession, account_id: int) -> int | None:
    """The highest contact id inside the account's limit; None when nobody can be over it (no limit)."""
    row = await first_row_once(session, ("contact_limit", account_id), _LIMIT, {"account_id": account_id})
    limit = row[0] if row is not None else None
    if limit is None:
        return None
    if limit <= 0:
        return 0
    last = await first_row_once(
        session,
        ("contact_limit_last", account_id),
        _LAST_INSIDE,
        {"account_id": account_id, "offset": limit - 1},
    )
    return None if last is None else int(last[0])  # None: fewer contacts than the limit


def is_over(contact_id: int, last_inside: int | None) -> bool:
    return last_inside is not None and contact_id > last_inside


class ContactLimitPolicy:
    """Outbox policy: a business-initiated send to a contact past the limit fails with ``contact_limit``."""

    async def check(self, session: AsyncSession, ctx: SendContext) -> Refusal | None:
        if ctx.stage != "submit":
            return None
        if not (ctx.draft.business_initiated or ctx.draft.origin == "automation"):
            return None
        last = await last_contact_inside(session, ctx.conversation.account_id)
        if not is_over(ctx.conversation.contact_id, last):
            return None
        return Refusal(Reason.CONTACT_LIMIT, "this contact is over the plan's contact limit")
