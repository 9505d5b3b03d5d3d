"""Who may see and do what: roles and inbox membership."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.model import Role

ADMIN_ROLES = frozenset({Role.SUPER_ADMIN, Role.ADMIN})
BILLING_ROLES = frozenset({Role.SUPER_ADMIN, Role.BILLING_ADMIN})


def is_admin(user: t.User) -> bool:
    return user.role in ADMIN_ROLES


def can_manage_billing(user: t.User) -> bool:
    return user.role in BILLING_ROLES


async def visible_inbox_ids(session: AsyncSession, user: t.User) -> set[int]:
    """Admins see every inbox of their account; everyone else the inboxes they are a member of."""
    if is_admin(user):
        rows = await session.scalars(select(t.InboxRow.id).where(t.InboxRow.account_id == user.account_id))
    else:
        rows = await session.scalars(
            select(t.InboxMember.inbox_id)
            .join(t.InboxRow, t.InboxRow.id == t.InboxMember.inbox_id)
            .where(t.InboxMember.user_id == user.id, t.InboxRow.account_id == user.account_id)
        )
    return set(rows)


async def can_see_inbox(session: AsyncSession, user: t.User, inbox_id: int) -> bool:
    return inbox_id in await visible_inbox_ids(session, user)
