"""Tickets: a customer problem followed past the chat, through the account's pipeline of stages.

The pipeline lives in ``accounts.settings["ticket_pipeline"]`` (the default until an admin sets one).
Every change of a ticket leaves one ``ticket_changes`` row per field and a ``ticket.updated`` event
in the same transaction; the caller has checked that owners, contacts and conversations exist and may
be linked (gateway/api/tickets.py), this module checks the stage against the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.events import record_event
from inbox.views import dump

PIPELINE_KEY = "ticket_pipeline"


class Stage(BaseModel):
    """One column of the board. ``closed`` stages end a ticket (``closed_at`` is set)."""

    key: str
    name: str
    closed: bool = False


DEFAULT_PIPELINE: tuple[Stage, ...] = (
    Stage(key="new", name="New"),
    Stage(key="waiting_on_contact", name="Waiting on contact"),
    Stage(key="waiting_on_us", name="Waiting on us"),
    Stage(key="closed", name="Closed", closed=True),
)


class TicketError(ValueError):
    """A change that cannot be made; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.problem = message


def pipeline_of(account: t.Account) -> list[Stage]:
    stored = (account.settings or {}).get(PIPELINE_KEY)
    if not stored:
        return list(DEFAULT_PIPELINE)
    return [Stage.model_validate(s) for s in stored]


def stage_of(pipeline: list[Stage], key: str) -> Stage:
    for stage in pipeline:
        if stage.key == key:
            return stage
    raise TicketError(
        "stage", f"unknown stage {key!r}; the pipeline has {', '.join(s.key for s in pipeline)}"
    )


async def set_pipeline(session: AsyncSession, account: t.Account, stages: list[Stage]) -> list[Stage]:
    """Replace the account's pipeline. A stage that tickets are still in cannot be removed."""
    keys = [s.key for s in stages]
    if len(set(keys)) != len(keys):
        raise TicketError("stages", "stage keys must be unique")
    in_use = set(
        await session.scalars(select(t.Ticket.stage).where(t.Ticket.account_id == account.id).distinct())
    )
    removed = sorted(in_use - set(keys))
    if removed:
        raise TicketError("stages", f"tickets are still in {', '.join(removed)}: move them first")
    account.settings = {**(account.settings or {}), PIPELINE_KEY: [s.model_dump() for s in stages]}
    return stages


class TicketView(BaseModel):
    id: int
    inbox_id: int
    title: str
    description: str
    stage: str
    priority: str
    owner_id: int | None
    contact_id: int | None
    conversation_ids: list[int]
    created_by_id: int | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, ticket: t.Ticket, conversation_ids: list[int]) -> TicketView:
        return cls(
            id=ticket.id,
            inbox_id=ticket.inbox_id,
            title=ticket.title,
            description=ticket.description,
            stage=ticket.stage,
            priority=ticket.priority,
            owner_id=ticket.owner_id,
            contact_id=ticket.contact_id,
            conversation_ids=sorted(conversation_ids),
            created_by_id=ticket.created_by_id,
            created_at=ticket.created_at,
            updated_at=ticket.updated_at,
            closed_at=ticket.closed_at,
        )


class ChangeView(BaseModel):
    id: int
    actor_id: int | None
    field: str
    old: Any
    new: Any
    created_at: datetime


@dataclass
class TicketFields:
    """What a create sets, or a patch changes (``given`` names the fields a patch carries)."""

    title: str | None = None
    description: str | None = None
    stage: str | None = None
    priority: str | None = None
    owner_id: int | None = None
    contact_id: int | None = None
    conversation_ids: list[int] | None = None
    given: set[str] = field(default_factory=set)


async def linked_conversations(session: AsyncSession, ticket_ids: list[int]) -> dict[int, list[int]]:
    links: dict[int, list[int]] = {i: [] for i in ticket_ids}
    if ticket_ids:
        rows = await session.execute(
            select(t.TicketConversation.ticket_id, t.TicketConversation.conversation_id).where(
                t.TicketConversation.ticket_id.in_(ticket_ids)
            )
        )
        for ticket_id, conversation_id in rows:
            links[ticket_id].append(conversation_id)
    return links


async def views_of(session: AsyncSession, tickets: list[t.Ticket]) -> list[TicketView]:
    links = await linked_conversations(session, [x.id for x in tickets])
    return [TicketView.of(x, links[x.id]) for x in tickets]


async def create_ticket(
    session: AsyncSession,
    account: t.Account,
    inbox_id: int,
    fields: TicketFields,
    *,
    actor_id: int | None,
    now: datetime,
) -> TicketView:
    pipeline = pipeline_of(account)
    stage = stage_of(pipeline, fields.stage) if fields.stage is not None else pipeline[0]
    ticket = t.Ticket(
        account_id=account.id,
        inbox_id=inbox_id,
        title=fields.title or "",
        description=fields.description or "",
        stage=stage.key,
        priority=fields.priority or "none",
        owner_id=fields.owner_id,
        contact_id=fields.contact_id,
        created_by_id=actor_id,
        created_at=now,
        updated_at=now,
        closed_at=now if stage.closed else None,
    )
    session.add(ticket)
    await session.flush()
    conversation_ids = sorted(set(fields.conversation_ids or []))
    session.add_all([t.TicketConversation(ticket_id=ticket.id, conversation_id=c) for c in conversation_ids])
    session.add(
        t.TicketChange(ticket_id=ticket.id, actor_id=actor_id, field="created", new=stage.key, created_at=now)
    )
    view = TicketView.of(ticket, conversation_ids)
    changes = [{"field": "owner_id", "old": None, "new": ticket.owner_id}] if ticket.owner_id else []
    await _record(session, "ticket.created", view, changes, account.id, actor_id, now)
    return view


async def update_ticket(
    session: AsyncSession,
    account: t.Account,
    ticket: t.Ticket,
    fields: TicketFields,
    *,
    actor_id: int | None,
    now: datetime,
) -> TicketView:
    """Apply the given fields; one history row per field that really changed."""
    changes: list[dict[str, Any]] = []

    def change(name: str, old: Any, new: Any) -> None:
        if old != new:
            changes.append({"field": name, "old": old, "new": new})

    if "stage" in fields.given and fields.stage is not None:
        stage = stage_of(pipeline_of(account), fields.stage)
        change("stage", ticket.stage, stage.key)
        if stage.key != ticket.stage:
            ticket.stage = stage.key
            ticket.closed_at = now if stage.closed else None
    for name in ("title", "description", "priority", "owner_id", "contact_id"):
        if name in fields.given:
            new = getattr(fields, name)
            if new is None and name in ("title", "description", "priority"):
                continue  # not nullable: the API refuses null for these
            change(name, getattr(ticket, name), new)
            setattr(ticket, name, new)
    links = (await linked_conversations(session, [ticket.id]))[ticket.id]
    if "conversation_ids" in fields.given and fields.conversation_ids is not None:
        wanted = sorted(set(fields.conversation_ids))
        change("conversation_ids", sorted(links), wanted)
        if wanted != sorted(links):
            await session.execute(
                delete(t.TicketConversation).where(t.TicketConversation.ticket_id == ticket.id)
            )
            session.add_all([t.TicketConversation(ticket_id=ticket.id, conversation_id=c) for c in wanted])
            links = wanted
    if changes:
        ticket.updated_at = now
        session.add_all(
            [
                t.TicketChange(
                    ticket_id=ticket.id,
                    actor_id=actor_id,
                    field=c["field"],
                    old=c["old"],
                    new=c["new"],
                    created_at=now,
                )
                for c in changes
            ]
        )
    await session.flush()
    view = TicketView.of(ticket, links)
    if changes:
        await _record(session, "ticket.updated", view, changes, account.id, actor_id, now)
    return view


async def history(session: AsyncSession, ticket_id: int) -> list[ChangeView]:
    rows = await session.scalars(
        select(t.TicketChange).where(t.TicketChange.ticket_id == ticket_id).order_by(t.TicketChange.id)
    )
    return [
        ChangeView(id=r.id, actor_id=r.actor_id, field=r.field, old=r.old, new=r.new, created_at=r.created_at)
        for r in rows
    ]


async def _record(
    session: AsyncSession,
    type_: str,
    view: TicketView,
    changes: list[dict[str, Any]],
    account_id: int,
    actor_id: int | None,
    now: datetime,
) -> None:
    await record_event(
        session,
        type_,
        account_id=account_id,
        now=now,
        inbox_id=view.inbox_id,
        payload={"ticket": dump(view), "changes": changes, "actor_id": actor_id},
    )
