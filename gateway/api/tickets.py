"""Tickets and the account's ticket pipeline.

A ticket belongs to an inbox: whoever may see the inbox may see and change its tickets (admins see
every inbox). Owners must be members of that inbox; linked conversations must be visible to the caller.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.admin import require_admin
from gateway.api.context import container_of, path_id, user_of
from gateway.api.conversations import visible_conversation
from gateway.api.errors import ApiError, field_error, not_found
from gateway.api.spec import ApiRoutes, Page
from inbox import tables as t
from inbox.access import can_see_inbox, visible_inbox_ids
from inbox.model import Priority
from inbox.queries import list_by_id
from inbox.tickets import (
    ChangeView,
    Stage,
    TicketError,
    TicketFields,
    TicketView,
    create_ticket,
    history,
    pipeline_of,
    set_pipeline,
    update_ticket,
    views_of,
)

api = ApiRoutes()

STAGE_KEY = r"^[a-z0-9_]{1,64}$"


class TicketCreate(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=65536)
    stage: str | None = Field(default=None, max_length=64)
    priority: Priority = Priority.NONE
    owner_id: int | None = None
    contact_id: int | None = None
    inbox_id: int | None = None
    conversation_ids: list[int] = Field(default_factory=list, max_length=50)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the title must not be blank")
        return value.strip()


class TicketPatch(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=65536)
    stage: str | None = Field(default=None, max_length=64)
    priority: Priority | None = None
    owner_id: int | None = None
    contact_id: int | None = None
    conversation_ids: list[int] | None = Field(default=None, max_length=50)


class TicketQuery(BaseModel):
    stage: str | None = Field(default=None, max_length=64)
    owner_id: int | Literal["me", "none"] | None = None
    inbox_id: int | None = None
    contact_id: int | None = None
    conversation_id: int | None = None
    priority: Priority | None = None
    q: str | None = Field(default=None, max_length=200)
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


class PipelineView(BaseModel):
    stages: list[Stage]


class TicketHistory(BaseModel):
    items: list[ChangeView]


class StageBody(BaseModel):
    key: str = Field(pattern=STAGE_KEY)
    name: str = Field(min_length=1, max_length=100)
    closed: bool = False


class PipelineBody(BaseModel):
    stages: list[StageBody] = Field(min_length=1, max_length=20)


async def _account(session: AsyncSession, user: t.User) -> t.Account:
    account = await session.get(t.Account, user.account_id)
    assert account is not None  # a signed-in user's account exists
    return account


async def visible_ticket(session: AsyncSession, user: t.User, ticket_id: int) -> t.Ticket:
    ticket = await session.get(t.Ticket, ticket_id)
    if (
        ticket is None
        or ticket.account_id != user.account_id
        or not await can_see_inbox(session, user, ticket.inbox_id)
    ):
        raise not_found("ticket", ticket_id)
    return ticket


async def _check_owner(session: AsyncSession, user: t.User, owner_id: int | None, inbox_id: int) -> None:
    if owner_id is None:
        return
    owner = await session.get(t.User, owner_id)
    if owner is None or owner.account_id != user.account_id:
        raise field_error("owner_id", f"user {owner_id} does not exist")
    if not await can_see_inbox(session, owner, inbox_id):
        raise field_error("owner_id", f"{owner.name} is not a member of this ticket's inbox")


async def _check_contact(session: AsyncSession, user: t.User, contact_id: int | None) -> None:
    if contact_id is None:
        return
    contact = await session.get(t.Contact, contact_id)
    if contact is None or contact.account_id != user.account_id:
        raise field_error("contact_id", f"contact {contact_id} does not exist")


async def _conversations(session: AsyncSession, user: t.User, ids: list[int]) -> list[t.Conversation]:
    found = []
    for i, conversation_id in enumerate(ids):
        try:
            found.append(await visible_conversation(session, user, conversation_id))
        except ApiError:
            raise field_error(
                f"conversation_ids.{i}", f"conversation {conversation_id} does not exist"
            ) from None
    return found


def _ticket_error(exc: TicketError) -> ApiError:
    return field_error(exc.field, exc.problem)


@api.route(
    "GET", "/ticket-pipeline", summary="The account's ticket stages, in board order", response=PipelineView
)
async def get_pipeline(request: web.Request) -> PipelineView:
    async with container_of(request).db.read() as session:
        return PipelineView(stages=pipeline_of(await _account(session, user_of(request))))


@api.route(
    "PUT",
    "/ticket-pipeline",
    summary="Replace the ticket stages (admins); stages tickets are still in cannot be removed",
    body=PipelineBody,
    response=PipelineView,
)
async def put_pipeline(request: web.Request, body: PipelineBody) -> PipelineView:
    user = require_admin(request)
    async with container_of(request).db.write() as session:
        account = await _account(session, user)
        try:
            stages = await set_pipeline(session, account, [Stage(**s.model_dump()) for s in body.stages])
        except TicketError as exc:
            raise _ticket_error(exc) from exc
        return PipelineView(stages=stages)


@api.route("POST", "/tickets", summary="Open a ticket", body=TicketCreate, response=TicketView, status=201)
async def post_ticket(request: web.Request, body: TicketCreate) -> TicketView:
    user = user_of(request)
    c = container_of(request)
    async with c.db.write() as session:
        conversations = await _conversations(session, user, body.conversation_ids)
        inbox_id = body.inbox_id
        if inbox_id is None:
            if not conversations:
                raise field_error("inbox_id", "give the inbox, or a conversation to take it from")
            inbox_id = conversations[0].inbox_id
        elif not await can_see_inbox(session, user, inbox_id):
            raise field_error("inbox_id", f"inbox {inbox_id} does not exist")
        contact_id = body.contact_id
        if contact_id is None and conversations:
            contact_id = conversations[0].contact_id
        await _check_owner(session, user, body.owner_id, inbox_id)
        await _check_contact(session, user, contact_id)
        fields = TicketFields(
            title=body.title,
            description=body.description,
            stage=body.stage,
            priority=body.priority.value,
            owner_id=body.owner_id,
            contact_id=contact_id,
            conversation_ids=[x.id for x in conversations],
        )
        try:
            return await create_ticket(
                session, await _account(session, user), inbox_id, fields, actor_id=user.id, now=c.clock()
            )
        except TicketError as exc:
            raise _ticket_error(exc) from exc


@api.route(
    "GET",
    "/tickets",
    summary="Tickets, oldest first, with filters",
    query=TicketQuery,
    response=Page[TicketView],
)
async def list_tickets(request: web.Request, query: TicketQuery) -> Page[TicketView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        inbox_ids = await visible_inbox_ids(session, user)
        if query.inbox_id is not None:
            inbox_ids &= {query.inbox_id}
        stmt = select(t.Ticket).where(
            t.Ticket.account_id == user.account_id, t.Ticket.inbox_id.in_(inbox_ids)
        )
        if query.stage is not None:
            stmt = stmt.where(t.Ticket.stage == query.stage)
        if query.owner_id == "me":
            stmt = stmt.where(t.Ticket.owner_id == user.id)
        elif query.owner_id == "none":
            stmt = stmt.where(t.Ticket.owner_id.is_(None))
        elif isinstance(query.owner_id, int):
            stmt = stmt.where(t.Ticket.owner_id == query.owner_id)
        if query.contact_id is not None:
            stmt = stmt.where(t.Ticket.contact_id == query.contact_id)
        if query.priority is not None:
            stmt = stmt.where(t.Ticket.priority == query.priority.value)
        if query.conversation_id is not None:
            stmt = stmt.where(
                t.Ticket.id.in_(
                    select(t.TicketConversation.ticket_id).where(
                        t.TicketConversation.conversation_id == query.conversation_id
                    )
                )
            )
        if query.q:
            escaped = query.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(t.Ticket.title.ilike(f"%{escaped}%", escape="\\"))
        rows, cursor = await list_by_id(session, stmt, t.Ticket.id, query.limit, query.cursor)
        return Page[TicketView](items=await views_of(session, rows), next_cursor=cursor)


@api.route("GET", "/tickets/{id}", summary="One ticket", response=TicketView)
async def get_ticket(request: web.Request) -> TicketView:
    async with container_of(request).db.read() as session:
        ticket = await visible_ticket(session, user_of(request), path_id(request))
        (view,) = await views_of(session, [ticket])
        return view


@api.route(
    "PATCH",
    "/tickets/{id}",
    summary="Change a ticket: stage, owner, priority, title, description, contact, linked conversations",
    body=TicketPatch,
    response=TicketView,
)
async def patch_ticket(request: web.Request, body: TicketPatch) -> TicketView:
    user = user_of(request)
    c = container_of(request)
    given = set(body.model_fields_set)
    for name in ("title", "description", "stage", "priority"):
        if name in given and getattr(body, name) is None:
            raise field_error(name, "must not be null")
    async with c.db.write() as session:
        ticket = await visible_ticket(session, user, path_id(request))
        if "owner_id" in given:
            await _check_owner(session, user, body.owner_id, ticket.inbox_id)
        if "contact_id" in given:
            await _check_contact(session, user, body.contact_id)
        conversation_ids = None
        if body.conversation_ids is not None:
            conversation_ids = [x.id for x in await _conversations(session, user, body.conversation_ids)]
        fields = TicketFields(
            title=body.title.strip() if body.title else None,
            description=body.description,
            stage=body.stage,
            priority=body.priority.value if body.priority else None,
            owner_id=body.owner_id,
            contact_id=body.contact_id,
            conversation_ids=conversation_ids,
            given=given,
        )
        try:
            return await update_ticket(
                session, await _account(session, user), ticket, fields, actor_id=user.id, now=c.clock()
            )
        except TicketError as exc:
            raise _ticket_error(exc) from exc


@api.route(
    "GET", "/tickets/{id}/history", summary="Every change of a ticket, oldest first", response=TicketHistory
)
async def ticket_history(request: web.Request) -> TicketHistory:
    async with container_of(request).db.read() as session:
        ticket = await visible_ticket(session, user_of(request), path_id(request))
        return TicketHistory(items=await history(session, ticket.id))
