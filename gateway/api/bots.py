"""Bot flows over the API (admins): create from JSON or YAML, edit, enable/disable, runs and performance."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bots.flow import FlowInvalid, load_flow, parse_source
from bots.stats import BotStats, flow_stats
from gateway.api.admin import ListQuery, require_admin
from gateway.api.context import container_of, path_id
from gateway.api.errors import ApiError, not_found
from gateway.api.spec import ApiRoutes, Page
from inbox import tables as t
from inbox.queries import list_by_id

api = ApiRoutes()


class BotBody(BaseModel):
    """``definition`` as JSON, or ``source`` as YAML or JSON text; kind ``faq`` is the built-in FAQ bot."""

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["flow", "faq"] = "flow"
    enabled: bool = True
    definition: dict[str, Any] | None = None
    source: str | None = Field(default=None, max_length=1_000_000)

    @model_validator(mode="after")
    def _one(self) -> BotBody:
        if (self.definition is None) == (self.source is None):
            raise ValueError("give exactly one of definition (JSON) or source (YAML or JSON text)")
        return self


class BotPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    definition: dict[str, Any] | None = None
    source: str | None = Field(default=None, max_length=1_000_000)


class BotView(BaseModel):
    id: int
    name: str
    kind: str
    enabled: bool
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, b: t.BotFlow) -> BotView:
        return cls(
            id=b.id,
            name=b.name,
            kind=b.kind,
            enabled=b.enabled,
            definition=dict(b.definition),
            created_at=b.created_at,
            updated_at=b.updated_at,
        )


class RunView(BaseModel):
    id: int
    flow_id: int
    conversation_id: int
    status: str
    state: str
    outcome: str | None
    steps: int
    refusals: list[dict[str, Any]]
    started_at: datetime
    ended_at: datetime | None


def _definition(kind: str, definition: dict[str, Any] | None, source: str | None) -> dict[str, Any]:
    """The validated definition as stored; 422 naming each offending field."""
    try:
        data = parse_source(source) if source is not None else definition
        if not isinstance(data, dict):
            raise FlowInvalid([{"field": "source", "problem": "must be a mapping of a flow"}])
        load_flow(kind, data)
    except FlowInvalid as exc:
        raise ApiError(422, "validation_error", f"invalid bot flow: {exc}", exc.problems) from exc
    return data


async def _bot(session: AsyncSession, account_id: int, bot_id: int) -> t.BotFlow:
    bot = await session.get(t.BotFlow, bot_id)
    if bot is None or bot.account_id != account_id:
        raise not_found("bot", bot_id)
    return bot


@api.route("GET", "/bots", summary="Bot flows (admins)", response=Page[BotView])
async def list_bots(request: web.Request) -> Page[BotView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        rows = await session.scalars(
            select(t.BotFlow).where(t.BotFlow.account_id == user.account_id).order_by(t.BotFlow.id)
        )
        return Page[BotView](items=[BotView.of(b) for b in rows])


@api.route(
    "POST",
    "/bots",
    summary="Create a bot flow from JSON or YAML (admins)",
    body=BotBody,
    response=BotView,
    status=201,
)
async def create_bot(request: web.Request, body: BotBody) -> BotView:
    user = require_admin(request)
    c = container_of(request)
    definition = _definition(body.kind, body.definition, body.source)
    now = c.clock()
    async with c.db.write() as session:
        bot = t.BotFlow(
            account_id=user.account_id,
            name=body.name,
            kind=body.kind,
            definition=definition,
            enabled=body.enabled,
            created_at=now,
            updated_at=now,
        )
        session.add(bot)
        await session.flush()
        return BotView.of(bot)


@api.route("GET", "/bots/{id}", summary="One bot flow (admins)", response=BotView)
async def get_bot(request: web.Request) -> BotView:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        return BotView.of(await _bot(session, user.account_id, path_id(request)))


@api.route(
    "PATCH",
    "/bots/{id}",
    summary="Edit, enable or disable a bot flow (admins); runs continue if their state still exists",
    body=BotPatch,
    response=BotView,
)
async def patch_bot(request: web.Request, body: BotPatch) -> BotView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        bot = await _bot(session, user.account_id, path_id(request))
        if body.definition is not None or body.source is not None:
            if body.definition is not None and body.source is not None:
                raise ApiError(422, "validation_error", "give definition or source, not both")
            bot.definition = _definition(bot.kind, body.definition, body.source)
        if body.name is not None:
            bot.name = body.name
        if body.enabled is not None:
            bot.enabled = body.enabled
        bot.updated_at = c.clock()
        await session.flush()
        return BotView.of(bot)


@api.route("DELETE", "/bots/{id}", summary="Delete a bot flow and its runs (admins)")
async def delete_bot(request: web.Request) -> None:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        bot = await _bot(session, user.account_id, path_id(request))
        # Conversations it is talking in go to people first; its runs go with it.
        await c.bots.stop_flow(session, bot.id, c.clock(), "its flow was deleted")
        await session.flush()
        await session.delete(bot)


@api.route(
    "GET",
    "/bots/{id}/stats",
    summary="Runs, completions, hand-offs, resolved without a human",
    response=BotStats,
)
async def bot_stats(request: web.Request) -> BotStats:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        bot = await _bot(session, user.account_id, path_id(request))
        return await flow_stats(session, bot.id)


@api.route(
    "GET",
    "/bots/{id}/runs",
    summary="The bot's runs, oldest first (admins)",
    query=ListQuery,
    response=Page[RunView],
)
async def bot_runs(request: web.Request, query: ListQuery) -> Page[RunView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        bot = await _bot(session, user.account_id, path_id(request))
        rows, cursor = await list_by_id(
            session,
            select(t.BotRun).where(t.BotRun.flow_id == bot.id),
            t.BotRun.id,
            query.limit,
            query.cursor,
        )
        return Page[RunView](
            items=[
                RunView(
                    id=r.id,
                    flow_id=r.flow_id,
                    conversation_id=r.conversation_id,
                    status=r.status,
                    state=r.state,
                    outcome=r.outcome,
                    steps=r.steps,
                    refusals=list(r.refusals or []),
                    started_at=r.started_at,
                    ended_at=r.ended_at,
                )
                for r in rows
            ],
            next_cursor=cursor,
        )
