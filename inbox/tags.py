"""Contact tags: who carries which tag, added by hand (``manual``) or by rules (``auto``).

Every change records ``contact.tag_added`` / ``contact.tag_removed`` in the caller's transaction, so
automations (Database.on_events) start with the change that triggers them. ``tag_filter`` is the one
way to select contacts by tags (has any / has all / has none), for segments and audiences.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, and_, delete, exists, func, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.events import record_event

TagSource = Literal["auto", "manual"]
MAX_TAG = 200
TAG_ADDED = "contact.tag_added"
TAG_REMOVED = "contact.tag_removed"
AUTO_PREFIX = "product:"  # the standard rules' tags (inbox.products.product_tag)


class TagError(ValueError):
    """A tag that cannot be used or changed (blank, too long, automatic)."""


def normalize_tag(raw: str) -> str:
    """Tags compare trimmed and lower-cased: ``VIP `` and ``vip`` are one tag."""
    tag = raw.strip().lower()
    if not tag:
        raise TagError("a tag must not be blank")
    if len(tag) > MAX_TAG:
        raise TagError(f"a tag has at most {MAX_TAG} characters")
    if any(ord(ch) < 32 for ch in tag):
        raise TagError("a tag must not contain control characters")
    return tag


async def tags_of(session: AsyncSession, contact_id: int) -> list[t.ContactTag]:
    rows = await session.scalars(
        select(t.ContactTag).where(t.ContactTag.contact_id == contact_id).order_by(t.ContactTag.tag)
    )
    return list(rows)


async def add_tag(
    session: AsyncSession, contact: t.Contact, tag: str, *, source: TagSource, now: datetime
) -> bool:
    """Put ``tag`` on the contact; False when it already had it (nothing changes then, no event).

    A rule's tag on a contact who had it by hand becomes automatic (rules own it from then on).
    """
    tag = normalize_tag(tag)
    if source == "manual" and tag.startswith(AUTO_PREFIX):
        raise TagError(f"tags starting with {AUTO_PREFIX!r} are automatic: only product rules add them")
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    values = {
        "contact_id": contact.id,
        "tag": tag,
        "account_id": contact.account_id,
        "source": source,
        "created_at": now,
    }
    # Two writers racing to add the same tag: the loser's insert does nothing.
    result = await session.execute(insert(t.ContactTag).values(**values).on_conflict_do_nothing())
    if not result.rowcount:  # type: ignore[attr-defined]
        if source == "auto":
            await session.execute(
                update(t.ContactTag)
                .where(t.ContactTag.contact_id == contact.id, t.ContactTag.tag == tag)
                .values(source="auto")
            )
        return False
    await _record(session, TAG_ADDED, contact, tag, source, now)
    return True


async def remove_tag(
    session: AsyncSession, contact: t.Contact, tag: str, *, source: TagSource, now: datetime
) -> bool:
    """Take ``tag`` off the contact; False when it did not have it. By hand, automatic tags stay."""
    tag = normalize_tag(tag)
    row = await session.get(t.ContactTag, (contact.id, tag))
    if row is None:
        return False
    if row.source == "auto" and source == "manual":
        raise TagError(f"{tag!r} is an automatic tag: only its rule removes it")
    await session.execute(
        delete(t.ContactTag).where(t.ContactTag.contact_id == contact.id, t.ContactTag.tag == tag)
    )
    session.expunge(row)
    await _record(session, TAG_REMOVED, contact, tag, row.source, now)
    return True


async def _record(
    session: AsyncSession, type_: str, contact: t.Contact, tag: str, source: str, now: datetime
) -> None:
    await record_event(
        session,
        type_,
        account_id=contact.account_id,
        now=now,
        payload={"contact_id": contact.id, "tag": tag, "source": source},
    )


async def tag_counts(session: AsyncSession, account_id: int) -> list[tuple[str, str, int]]:
    """(tag, source, contacts) of an account's tags; a tag carried both ways is listed for each."""
    rows = await session.execute(
        select(t.ContactTag.tag, t.ContactTag.source, func.count())
        .where(t.ContactTag.account_id == account_id)
        .group_by(t.ContactTag.tag, t.ContactTag.source)
        .order_by(t.ContactTag.tag, t.ContactTag.source)
    )
    return [(tag, source, int(n)) for tag, source, n in rows]


def _holders(tags: Sequence[str], account_id: int | None) -> ColumnElement[bool]:
    """Contacts with any of ``tags``: an EXISTS on the (contact_id, tag) key, or with ``account_id`` an IN
    over the account's (account_id, tag, contact_id) index, which is much faster over many contacts."""
    if account_id is None:
        return exists().where(t.ContactTag.contact_id == t.Contact.id, t.ContactTag.tag.in_(tags))
    holders = select(t.ContactTag.contact_id).where(
        t.ContactTag.account_id == account_id, t.ContactTag.tag.in_(tags)
    )
    return t.Contact.id.in_(holders)


def tag_filter(
    *,
    any_of: Iterable[str] = (),
    all_of: Iterable[str] = (),
    none_of: Iterable[str] = (),
    account_id: int | None = None,
) -> ColumnElement[bool]:
    """A condition on ``t.Contact`` rows: has any of ``any_of``, all of ``all_of``, none of ``none_of``.

    Combine it with the account's own ``t.Contact.account_id == ...`` condition in the caller's select;
    give ``account_id`` too when the select spans many contacts (audiences), for the indexed form.
    """
    parts: list[ColumnElement[bool]] = []
    any_tags: Sequence[str] = sorted({normalize_tag(x) for x in any_of})
    if any_tags:
        parts.append(_holders(any_tags, account_id))
    parts.extend(_holders([tag], account_id) for tag in sorted({normalize_tag(x) for x in all_of}))
    none_tags = sorted({normalize_tag(x) for x in none_of})
    if none_tags:
        parts.append(~_holders(none_tags, account_id))
    return and_(true(), *parts)
