"""Merging two contacts into one, and finding the contacts that look like the same person.

A merge moves everything of the contact that goes away (``other``) to the one that stays (``into``):
identities, conversations, tickets, billable conversations, consent per channel with its history,
tags, attributes and the contact events of the log. Where both hold a value the newer one wins: the
contact with the later activity (last conversation activity, else creation) is the newer. Every
conflict is written to the ``contact_merges`` audit row with the merged-away contact as it was, so
nothing is lost even though the merge is not undone automatically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.attributes import set_attributes
from inbox.events import record_event
from inbox.identities import InvalidAddress, normalize_email, normalize_phone

MERGED = "contact.merged"
_SCALARS = ("name", "email", "phone")


class MergeError(ValueError):
    """A merge that cannot be done (a contact into itself, or across accounts)."""


@dataclass
class MergePlan:
    """What a merge of ``other`` into ``into`` does, computed before anything changes (the preview)."""

    into_id: int
    from_id: int
    newer: str  # "into" | "from": whose values win a conflict
    scalars: dict[str, Any] = field(default_factory=dict)  # fields of ``into`` that change
    attributes: dict[str, Any] = field(default_factory=dict)  # attribute changes on ``into``
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    moves: dict[str, int] = field(default_factory=dict)  # table -> rows that move


async def _last_activity(session: AsyncSession, contact: t.Contact) -> datetime:
    last = await session.scalar(
        select(func.max(t.Conversation.last_activity_at)).where(t.Conversation.contact_id == contact.id)
    )
    return last or contact.created_at


async def _count(session: AsyncSession, column: Any, contact_id: int) -> int:
    return int(await session.scalar(select(func.count()).where(column == contact_id)) or 0)


async def plan_merge(session: AsyncSession, into: t.Contact, other: t.Contact) -> MergePlan:
    """The preview of a merge: which values change, the conflicts and how many rows move."""
    if into.id == other.id:
        raise MergeError("a contact cannot be merged into itself")
    if into.account_id != other.account_id:
        raise MergeError("contacts of different accounts cannot be merged")
    from_newer = await _last_activity(session, other) > await _last_activity(session, into)
    plan = MergePlan(into_id=into.id, from_id=other.id, newer="from" if from_newer else "into")

    def resolve(name: str, mine: Any, theirs: Any) -> Any:
        """The value ``into`` ends with; records the conflict when both hold different values."""
        if theirs is None or theirs == mine:
            return mine
        if mine is None:
            return theirs
        kept, dropped = (theirs, mine) if from_newer else (mine, theirs)
        plan.conflicts.append({"field": name, "kept": kept, "dropped": dropped, "from": plan.newer})
        return kept

    for name in _SCALARS:
        mine, theirs = getattr(into, name), getattr(other, name)
        value = resolve(name, mine, theirs)
        if value != mine:
            plan.scalars[name] = value
    mine_attrs, their_attrs = dict(into.attributes or {}), dict(other.attributes or {})
    for key, theirs in sorted(their_attrs.items()):
        value = resolve(f"attributes.{key}", mine_attrs.get(key), theirs)
        if value != mine_attrs.get(key):
            plan.attributes[key] = value

    states = await _consent_states(session, into.id, other.id)
    for channel_id, (mine_state, their_state) in sorted(states.items()):
        if mine_state is not None and their_state is not None and mine_state.state != their_state.state:
            newer = their_state if their_state.updated_at > mine_state.updated_at else mine_state
            older = mine_state if newer is their_state else their_state
            plan.conflicts.append(
                {
                    "field": f"consent.{channel_id}",
                    "kept": newer.state,
                    "dropped": older.state,
                    "from": "from" if newer is their_state else "into",
                }
            )
    for table, column in (
        ("identities", t.ContactIdentity.contact_id),
        ("conversations", t.Conversation.contact_id),
        ("tickets", t.Ticket.contact_id),
        ("consent_changes", t.ConsentChange.contact_id),
        ("tags", t.ContactTag.contact_id),
    ):
        plan.moves[table] = await _count(session, column, other.id)
    return plan


async def _consent_states(
    session: AsyncSession, into_id: int, from_id: int
) -> dict[int, tuple[t.ConsentState | None, t.ConsentState | None]]:
    rows = await session.scalars(
        select(t.ConsentState).where(t.ConsentState.contact_id.in_([into_id, from_id]))
    )
    states: dict[int, tuple[t.ConsentState | None, t.ConsentState | None]] = {}
    for row in rows:
        mine, theirs = states.get(row.channel_id, (None, None))
        states[row.channel_id] = (row, theirs) if row.contact_id == into_id else (mine, row)
    return states


def _row(obj: Any) -> dict[str, Any]:
    """A table row as JSON-ready values (datetimes as ISO text) for the audit snapshot."""
    out: dict[str, Any] = {}
    for column in obj.__table__.columns:
        value = getattr(obj, column.key)
        out[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return out


async def merge_contacts(
    session: AsyncSession, into: t.Contact, other: t.Contact, *, user_id: int | None, now: datetime
) -> t.ContactMerge:
    """Move everything of ``other`` to ``into`` and delete ``other``; returns the audit row.

    Runs in the caller's write transaction: either all of it commits or none of it.
    """
    plan = await plan_merge(session, into, other)
    identities = list(
        await session.scalars(select(t.ContactIdentity).where(t.ContactIdentity.contact_id == other.id))
    )
    their_tags = list(await session.scalars(select(t.ContactTag).where(t.ContactTag.contact_id == other.id)))
    states = await _consent_states(session, into.id, other.id)
    snapshot = {
        "contact": _row(other),
        "identities": [_row(i) for i in identities],
        "tags": [_row(x) for x in their_tags],
        "consent": [_row(theirs) for _, theirs in states.values() if theirs is not None],
    }

    for name, value in plan.scalars.items():
        setattr(into, name, value)
    into.labels = sorted(set(into.labels or []) | set(other.labels or []))
    into.auto_captured = bool(into.auto_captured and other.auto_captured)
    if plan.attributes:
        await set_attributes(session, into, plan.attributes)

    moved = {"contact_id": into.id}
    for table in (t.ContactIdentity, t.Conversation, t.Ticket, t.BillableConversation, t.ConsentChange):
        await session.execute(update(table).where(table.contact_id == other.id).values(**moved))

    # Consent: a channel only the other had moves; on both, the newer state stays.
    for mine, theirs in states.values():
        if theirs is None:
            continue
        if mine is None:
            theirs.contact_id = into.id
        elif theirs.updated_at > mine.updated_at:
            mine.state, mine.updated_at = theirs.state, theirs.updated_at
            await session.delete(theirs)
        else:
            await session.delete(theirs)

    # Tags: the union; a tag a rule put on either side stays the rule's.
    my_tags = {
        x.tag: x
        for x in await session.scalars(select(t.ContactTag).where(t.ContactTag.contact_id == into.id))
    }
    gained = []
    for tag in their_tags:
        mine_tag = my_tags.get(tag.tag)
        if mine_tag is None:
            session.add(
                t.ContactTag(
                    contact_id=into.id,
                    tag=tag.tag,
                    account_id=into.account_id,
                    source=tag.source,
                    created_at=tag.created_at,
                )
            )
            gained.append(tag.tag)
        elif tag.source == "auto":
            mine_tag.source = "auto"
    await session.execute(delete(t.ContactTag).where(t.ContactTag.contact_id == other.id))
    await session.execute(delete(t.ContactAttribute).where(t.ContactAttribute.contact_id == other.id))

    # The contact's events in the log now name the contact that stays (and say where they came from).
    events = await session.scalars(
        select(t.Event).where(
            t.Event.account_id == into.account_id,
            t.Event.type.like("contact.%"),
            t.Event.payload["contact_id"].as_integer() == other.id,
        )
    )
    for event in events:
        event.payload = {**event.payload, "contact_id": into.id, "merged_from": other.id}

    audit = t.ContactMerge(
        account_id=into.account_id,
        into_contact_id=into.id,
        from_contact_id=other.id,
        user_id=user_id,
        snapshot=snapshot,
        conflicts=plan.conflicts,
        created_at=now,
    )
    session.add(audit)
    await session.flush()
    await session.delete(other)
    await session.flush()
    await record_event(
        session,
        MERGED,
        account_id=into.account_id,
        now=now,
        payload={
            "contact_id": into.id,
            "from_contact_id": plan.from_id,
            "merge_id": audit.id,
            "conflicts": len(plan.conflicts),
            "tags_gained": gained,
        },
    )
    return audit


def _addresses(contact: t.Contact, identities: list[t.ContactIdentity]) -> tuple[set[str], set[str]]:
    """The contact's normalized emails and phone numbers, from its fields and every identity."""
    emails: set[str] = set()
    phones: set[str] = set()
    candidates = [("email", contact.email), ("phone", contact.phone)]
    candidates += [("email" if i.kind == "email" else "phone", i.address) for i in identities]
    for kind, raw in candidates:
        if not raw:
            continue
        try:
            if kind == "email":
                emails.add(normalize_email(raw))
            elif raw.lstrip("+").isdigit():
                phones.add(normalize_phone(raw))
        except InvalidAddress:
            continue
    return emails, phones


async def duplicates_of(session: AsyncSession, contact: t.Contact, limit: int = 20) -> list[t.Contact]:
    """Other contacts of the account sharing a normalized email or phone number with this one."""
    identities = list(
        await session.scalars(select(t.ContactIdentity).where(t.ContactIdentity.contact_id == contact.id))
    )
    emails, phones = _addresses(contact, identities)
    addresses = emails | phones
    if not addresses:
        return []
    by_identity = select(t.ContactIdentity.contact_id).where(
        t.ContactIdentity.account_id == contact.account_id, t.ContactIdentity.address.in_(addresses)
    )
    conditions = [t.Contact.id.in_(by_identity)]
    if emails:
        conditions.append(func.lower(t.Contact.email).in_(emails))
    if phones:
        conditions.append(t.Contact.phone.in_(phones))
    rows = await session.scalars(
        select(t.Contact)
        .where(t.Contact.account_id == contact.account_id, t.Contact.id != contact.id, or_(*conditions))
        .order_by(t.Contact.id)
        .limit(limit)
    )
    return list(rows)


async def merges_into(session: AsyncSession, contact_id: int) -> list[t.ContactMerge]:
    """The audit of the merges into a contact, oldest first."""
    rows = await session.scalars(
        select(t.ContactMerge).where(t.ContactMerge.into_contact_id == contact_id).order_by(t.ContactMerge.id)
    )
    return list(rows)
