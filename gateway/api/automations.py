"""Automations (admins): a trigger and steps; their runs with every step's outcome and the gate's refusals."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.admin import require_admin
from gateway.api.context import container_of, path_id
from gateway.api.errors import field_error, not_found, validation_error
from gateway.api.spec import ApiRoutes, Page
from inbox import tables as t
from inbox.automations import AutomationError, AutomationFields, AutomationPatch, fields_of, save
from inbox.queries import list_by_id

api = ApiRoutes()


class AutomationView(BaseModel):
    id: int
    name: str
    active: bool
    trigger: dict[str, Any]
    steps: list[dict[str, Any]]
    runs: int
    errors: int  # steps refused by the gate (or failed) over all runs
    last_error_at: datetime | None
    runs_by_status: dict[str, int]  # armed (no-reply timer set), active, done, canceled
    errors_by_reason: dict[str, int]  # e.g. {"quota_exhausted": 3, "contact_limit": 1}
    created_at: datetime
    updated_at: datetime


class RunStepView(BaseModel):
    position: int
    type: str
    outcome: str  # done, waiting, stopped, skipped, refused, failed
    reason: str | None
    detail: str | None
    message_id: int | None
    at: datetime


class RunView(BaseModel):
    id: int
    automation_id: int
    contact_id: int
    contact_name: str | None
    conversation_id: int | None
    status: str
    position: int
    run_at: datetime | None  # when its next step is due
    errors: int
    created_at: datetime
    finished_at: datetime | None
    steps: list[RunStepView]


class RunQuery(BaseModel):
    status: Literal["armed", "active", "done", "canceled"] | None = None
    errors: bool = False  # only runs with a refused or failed step
    contact_id: int | None = None
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


async def _stats(
    session: AsyncSession, ids: list[int]
) -> tuple[dict[int, dict[str, int]], dict[int, dict[str, int]]]:
    by_status: dict[int, dict[str, int]] = {i: {} for i in ids}
    by_reason: dict[int, dict[str, int]] = {i: {} for i in ids}
    if not ids:
        return by_status, by_reason
    r, s = t.AutomationRun, t.AutomationRunStep
    for automation_id, status, n in await session.execute(
        select(r.automation_id, r.status, func.count())
        .where(r.automation_id.in_(ids))
        .group_by(r.automation_id, r.status)
    ):
        by_status[automation_id][status] = int(n)
    for automation_id, reason, n in await session.execute(
        select(r.automation_id, s.reason, func.count())
        .join(s, s.run_id == r.id)
        .where(r.automation_id.in_(ids), r.errors > 0, s.outcome.in_(["refused", "failed"]))
        .group_by(r.automation_id, s.reason)
    ):
        by_reason[automation_id][str(reason or "error")] = int(n)
    return by_status, by_reason


async def _views(session: AsyncSession, rows: list[t.Automation]) -> list[AutomationView]:
    by_status, by_reason = await _stats(session, [a.id for a in rows])
    return [
        AutomationView(
            id=a.id,
            name=a.name,
            active=a.active,
            trigger=dict(a.trigger),
            steps=list(a.steps),
            runs=a.runs,
            errors=a.errors,
            last_error_at=a.last_error_at,
            runs_by_status=by_status[a.id],
            errors_by_reason=by_reason[a.id],
            created_at=a.created_at,
            updated_at=a.updated_at,
        )
        for a in rows
    ]


async def _owned(session: AsyncSession, request: web.Request, account_id: int) -> t.Automation:
    row = await session.get(t.Automation, path_id(request))
    if row is None or row.account_id != account_id:
        raise not_found("automation", request.match_info["id"])
    return row


@api.route(
    "POST",
    "/automations",
    summary="Create an automation: a trigger and its steps (admins). 422 names an unknown field, a "
    "missing channel/template/user/team/flow, or a cycle of tag steps and tag triggers",
    body=AutomationFields,
    response=AutomationView,
    status=201,
)
async def create_automation(request: web.Request, body: AutomationFields) -> AutomationView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        try:
            row = await save(session, t.Automation(), user.account_id, body, c.clock(), user.id)
        except AutomationError as exc:
            raise field_error(exc.field, exc.problem) from None
        (view,) = await _views(session, [row])
    c.automations.triggers.changed(user.account_id)
    return view


@api.route("GET", "/automations", summary="The account's automations (admins)", response=Page[AutomationView])
async def list_automations(request: web.Request) -> Page[AutomationView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        rows = list(
            await session.scalars(
                select(t.Automation)
                .where(t.Automation.account_id == user.account_id)
                .order_by(t.Automation.id)
            )
        )
        return Page[AutomationView](items=await _views(session, rows))


@api.route(
    "GET",
    "/automations/{id}",
    summary="One automation with its run and error counts (admins)",
    response=AutomationView,
)
async def get_automation(request: web.Request) -> AutomationView:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        (view,) = await _views(session, [await _owned(session, request, user.account_id)])
        return view


@api.route(
    "PATCH",
    "/automations/{id}",
    summary="Change an automation (name, active, trigger, steps); checked like a new one (admins). "
    "Runs under way go on with the new steps from the step they are at",
    body=AutomationPatch,
    response=AutomationView,
)
async def patch_automation(request: web.Request, body: AutomationPatch) -> AutomationView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        row = await _owned(session, request, user.account_id)
        merged = fields_of(row).model_dump(mode="json") | body.model_dump(mode="json", exclude_unset=True)
        try:
            fields = AutomationFields.model_validate(merged)
        except ValidationError as exc:
            raise validation_error(exc) from None
        try:
            await save(session, row, user.account_id, fields, c.clock())
        except AutomationError as exc:
            raise field_error(exc.field, exc.problem) from None
        (view,) = await _views(session, [row])
    c.automations.triggers.changed(user.account_id)
    return view


@api.route(
    "DELETE",
    "/automations/{id}",
    summary="Delete an automation and its runs; sent messages stay (admins)",
    status=204,
)
async def delete_automation(request: web.Request) -> None:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        await session.delete(await _owned(session, request, user.account_id))
    c.automations.triggers.changed(user.account_id)


@api.route(
    "GET",
    "/automations/{id}/runs",
    summary="An automation's runs, newest first, each with its steps' outcomes (admins)",
    query=RunQuery,
    response=Page[RunView],
)
async def list_runs(request: web.Request, query: RunQuery) -> Page[RunView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        automation = await _owned(session, request, user.account_id)
        r = t.AutomationRun
        stmt = select(r).where(r.automation_id == automation.id)
        if query.status is not None:
            stmt = stmt.where(r.status == query.status)
        if query.errors:
            stmt = stmt.where(r.errors > 0)
        if query.contact_id is not None:
            stmt = stmt.where(r.contact_id == query.contact_id)
        runs, cursor = await list_by_id(session, stmt, r.id, query.limit, query.cursor, newest_first=True)
        ids = [run.id for run in runs]
        steps: dict[int, list[RunStepView]] = {i: [] for i in ids}
        names: dict[int, str | None] = {}
        if ids:
            for s in await session.scalars(
                select(t.AutomationRunStep)
                .where(t.AutomationRunStep.run_id.in_(ids))
                .order_by(t.AutomationRunStep.id)
            ):
                steps[s.run_id].append(
                    RunStepView(
                        position=s.position,
                        type=s.type,
                        outcome=s.outcome,
                        reason=s.reason,
                        detail=s.detail,
                        message_id=s.message_id,
                        at=s.at,
                    )
                )
            named = await session.execute(
                select(t.Contact.id, t.Contact.name).where(t.Contact.id.in_({run.contact_id for run in runs}))
            )
            names = {contact_id: name for contact_id, name in named}
        items = [
            RunView(
                id=run.id,
                automation_id=run.automation_id,
                contact_id=run.contact_id,
                contact_name=names.get(run.contact_id),
                conversation_id=run.conversation_id,
                status=run.status,
                position=run.position,
                run_at=run.run_at,
                errors=run.errors,
                created_at=run.created_at,
                finished_at=run.finished_at,
                steps=steps[run.id],
            )
            for run in runs
        ]
        return Page[RunView](items=items, next_cursor=cursor)
