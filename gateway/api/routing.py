"""Routing over the API: rules (CRUD, reorder, enable/disable, audit of firings), assignment policies,
business hours per inbox, and the signed-in agent's availability."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError, model_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.admin import ListQuery, require_admin
from gateway.api.context import container_of, path_id, user_of
from gateway.api.errors import ApiError, not_found, validation_error
from gateway.api.spec import ApiRoutes, Page
from inbox import tables as t
from inbox.access import can_see_inbox
from inbox.queries import list_by_id
from routing.hours import SETTINGS_KEY, BusinessHours, hours_of
from routing.rules import (
    AssignAgent,
    AssignTeam,
    Condition,
    Group,
    InboxIs,
    MoveToInbox,
    RuleSpec,
    StartBot,
    Trigger,
)

api = ApiRoutes()


def _unknown(field: str, what: str, ident: int) -> ApiError:
    return ApiError(
        422,
        "validation_error",
        f"{field}: {what} {ident} does not exist",
        [{"field": field, "problem": f"unknown {what}"}],
    )


async def _exists(session: AsyncSession, table: Any, ident: int, account_id: int) -> bool:
    row = await session.get(table, ident)
    return row is not None and row.account_id == account_id


# -- rules -----------------------------------------------------------------------------------------


class RuleView(BaseModel):
    id: int
    position: int
    name: str
    enabled: bool
    match: str
    triggers: list[str]
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    stop: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: t.RoutingRule) -> RuleView:
        return cls(
            id=r.id,
            position=r.position,
            name=r.name,
            enabled=r.enabled,
            match=r.match,
            triggers=list(r.triggers),
            conditions=list(r.conditions),
            actions=list(r.actions),
            stop=r.stop,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


class RulePatch(BaseModel):
    name: str | None = None
    enabled: bool | None = None
    match: Literal["all", "any"] | None = None
    triggers: list[Trigger] | None = None
    conditions: list[dict[str, Any]] | None = None
    actions: list[dict[str, Any]] | None = None
    stop: bool | None = None


class Reorder(BaseModel):
    ids: list[int] = Field(max_length=10_000)


async def _check_references(session: AsyncSession, account_id: int, spec: RuleSpec) -> None:
    """Every inbox, team, user and bot flow a rule names must exist in the account (422 names the field)."""

    async def conditions(items: list[Condition], path: str) -> None:
        for i, cond in enumerate(items):
            if isinstance(cond, InboxIs):
                for j, inbox_id in enumerate(cond.inbox_ids):
                    if not await _exists(session, t.InboxRow, inbox_id, account_id):
                        raise _unknown(f"{path}.{i}.inbox_ids.{j}", "inbox", inbox_id)
            elif isinstance(cond, Group):
                await conditions(cond.conditions, f"{path}.{i}.conditions")

    await conditions(spec.conditions, "conditions")
    checks: list[tuple[type[Any], str, str, type[Any]]] = [
        (MoveToInbox, "inbox_id", "inbox", t.InboxRow),
        (AssignTeam, "team_id", "team", t.Team),
        (AssignAgent, "user_id", "user", t.User),
        (StartBot, "flow_id", "bot flow", t.BotFlow),
    ]
    for i, action in enumerate(spec.actions):
        for kind, field, what, table in checks:
            if isinstance(action, kind):
                ident = getattr(action, field)
                if not await _exists(session, table, ident, account_id):
                    raise _unknown(f"actions.{i}.{field}", what, ident)


def _store(rule: t.RoutingRule, spec: RuleSpec) -> None:
    rule.name = spec.name
    rule.enabled = spec.enabled
    rule.match = spec.match
    rule.triggers = list(spec.triggers)
    rule.conditions = [c.model_dump(mode="json") for c in spec.conditions]
    rule.actions = [a.model_dump(mode="json") for a in spec.actions]
    rule.stop = spec.stop


async def _rule(session: AsyncSession, user: t.User, rule_id: int) -> t.RoutingRule:
    rule = await session.get(t.RoutingRule, rule_id)
    if rule is None or rule.account_id != user.account_id:
        raise not_found("rule", rule_id)
    return rule


@api.route("GET", "/rules", summary="Routing rules in evaluation order (admins)", response=Page[RuleView])
async def list_rules(request: web.Request) -> Page[RuleView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        rows = await session.scalars(
            select(t.RoutingRule)
            .where(t.RoutingRule.account_id == user.account_id)
            .order_by(t.RoutingRule.position, t.RoutingRule.id)
        )
        return Page[RuleView](items=[RuleView.of(r) for r in rows])


@api.route(
    "POST", "/rules", summary="Add a rule at the end (admins)", body=RuleSpec, response=RuleView, status=201
)
async def create_rule(request: web.Request, body: RuleSpec) -> RuleView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        await _check_references(session, user.account_id, body)
        last = await session.scalar(
            select(func.max(t.RoutingRule.position)).where(t.RoutingRule.account_id == user.account_id)
        )
        now = c.clock()
        rule = t.RoutingRule(
            account_id=user.account_id, position=(last or 0) + 1, created_at=now, updated_at=now
        )
        _store(rule, body)
        session.add(rule)
        await session.flush()
        return RuleView.of(rule)


@api.route("GET", "/rules/{id}", summary="One rule (admins)", response=RuleView)
async def get_rule(request: web.Request) -> RuleView:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        return RuleView.of(await _rule(session, user, path_id(request)))


@api.route(
    "PATCH",
    "/rules/{id}",
    summary="Edit, enable or disable a rule (admins)",
    body=RulePatch,
    response=RuleView,
)
async def patch_rule(request: web.Request, body: RulePatch) -> RuleView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        rule = await _rule(session, user, path_id(request))
        merged = {
            **RuleView.of(rule).model_dump(include=set(RuleSpec.model_fields)),
            **body.model_dump(exclude_unset=True),
        }
        try:
            spec = RuleSpec.model_validate(merged)
        except ValidationError as exc:
            raise validation_error(exc) from exc
        await _check_references(session, user.account_id, spec)
        _store(rule, spec)
        rule.updated_at = c.clock()
        await session.flush()
        return RuleView.of(rule)


@api.route("DELETE", "/rules/{id}", summary="Delete a rule; its firings stay in the audit log (admins)")
async def delete_rule(request: web.Request) -> None:
    user = require_admin(request)
    async with container_of(request).db.write() as session:
        await session.delete(await _rule(session, user, path_id(request)))


@api.route(
    "POST",
    "/rules/reorder",
    summary="Set the evaluation order: every rule id, first to last (admins)",
    body=Reorder,
    response=Page[RuleView],
)
async def reorder_rules(request: web.Request, body: Reorder) -> Page[RuleView]:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        rows = {
            r.id: r
            for r in await session.scalars(
                select(t.RoutingRule).where(t.RoutingRule.account_id == user.account_id)
            )
        }
        if len(body.ids) != len(set(body.ids)) or set(body.ids) != set(rows):
            missing = sorted(set(rows) - set(body.ids))
            extra = sorted(set(body.ids) - set(rows))
            raise ApiError(
                422,
                "validation_error",
                f"ids: give every rule id exactly once (missing {missing}, unknown {extra})",
                [{"field": "ids", "problem": "not a permutation of the rule ids"}],
            )
        now = c.clock()
        for position, rule_id in enumerate(body.ids, start=1):
            rows[rule_id].position = position
            rows[rule_id].updated_at = now
        await session.flush()
        return Page[RuleView](items=[RuleView.of(rows[i]) for i in body.ids])


class FiringView(BaseModel):
    id: int
    rule_id: int
    rule_name: str
    conversation_id: int
    message_id: int | None
    trigger: str
    actions: list[dict[str, Any]]
    created_at: datetime


class FiringQuery(ListQuery):
    conversation_id: int | None = None
    rule_id: int | None = None


@api.route(
    "GET",
    "/rule-firings",
    summary="Audit: which rule fired on which conversation and what it did (admins)",
    query=FiringQuery,
    response=Page[FiringView],
)
async def list_firings(request: web.Request, query: FiringQuery) -> Page[FiringView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        stmt = select(t.RuleFiring).where(t.RuleFiring.account_id == user.account_id)
        if query.conversation_id is not None:
            stmt = stmt.where(t.RuleFiring.conversation_id == query.conversation_id)
        if query.rule_id is not None:
            stmt = stmt.where(t.RuleFiring.rule_id == query.rule_id)
        rows, cursor = await list_by_id(session, stmt, t.RuleFiring.id, query.limit, query.cursor)
        return Page[FiringView](
            items=[
                FiringView(
                    id=r.id,
                    rule_id=r.rule_id,
                    rule_name=r.rule_name,
                    conversation_id=r.conversation_id,
                    message_id=r.message_id,
                    trigger=r.trigger,
                    actions=list(r.actions),
                    created_at=r.created_at,
                )
                for r in rows
            ],
            next_cursor=cursor,
        )


# -- assignment policies ---------------------------------------------------------------------------


class PolicyBody(BaseModel):
    inbox_id: int | None = None
    team_id: int | None = None
    strategy: Literal["round_robin", "least_busy"] = "round_robin"
    capacity: int = Field(default=10, ge=1, le=10_000)
    agent_capacity: dict[int, int] = Field(default_factory=dict)  # user id → capacity
    release_on_offline: bool = True
    enabled: bool = True

    @model_validator(mode="after")
    def _one_owner(self) -> PolicyBody:
        if (self.inbox_id is None) == (self.team_id is None):
            raise ValueError("give exactly one of inbox_id or team_id")
        if any(v < 0 or v > 10_000 for v in self.agent_capacity.values()):
            raise ValueError("agent_capacity values must be between 0 and 10000")
        return self


class PolicyPatch(BaseModel):
    strategy: Literal["round_robin", "least_busy"] | None = None
    capacity: int | None = Field(default=None, ge=1, le=10_000)
    agent_capacity: dict[int, int] | None = None
    release_on_offline: bool | None = None
    enabled: bool | None = None


class PolicyView(BaseModel):
    id: int
    inbox_id: int | None
    team_id: int | None
    strategy: str
    capacity: int
    agent_capacity: dict[int, int]
    release_on_offline: bool
    enabled: bool
    waiting: int  # conversations queued for a free agent


async def _policy_view(session: AsyncSession, p: t.AssignmentPolicy) -> PolicyView:
    waiting = await session.scalar(
        select(func.count()).select_from(t.AssignmentWait).where(t.AssignmentWait.policy_id == p.id)
    )
    return PolicyView(
        id=p.id,
        inbox_id=p.inbox_id,
        team_id=p.team_id,
        strategy=p.strategy,
        capacity=p.capacity,
        agent_capacity={int(k): int(v) for k, v in (p.agent_capacity or {}).items()},
        release_on_offline=p.release_on_offline,
        enabled=p.enabled,
        waiting=int(waiting or 0),
    )


async def _policy(session: AsyncSession, user: t.User, policy_id: int) -> t.AssignmentPolicy:
    policy = await session.get(t.AssignmentPolicy, policy_id)
    if policy is None or policy.account_id != user.account_id:
        raise not_found("assignment policy", policy_id)
    return policy


@api.route(
    "GET", "/assignment-policies", summary="Automatic assignment policies (admins)", response=Page[PolicyView]
)
async def list_policies(request: web.Request) -> Page[PolicyView]:
    user = require_admin(request)
    async with container_of(request).db.read() as session:
        rows = await session.scalars(
            select(t.AssignmentPolicy)
            .where(t.AssignmentPolicy.account_id == user.account_id)
            .order_by(t.AssignmentPolicy.id)
        )
        return Page[PolicyView](items=[await _policy_view(session, p) for p in rows])


@api.route(
    "POST",
    "/assignment-policies",
    summary="Assign an inbox's or a team's conversations automatically (admins)",
    body=PolicyBody,
    response=PolicyView,
    status=201,
)
async def create_policy(request: web.Request, body: PolicyBody) -> PolicyView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        if body.inbox_id is not None and not await _exists(
            session, t.InboxRow, body.inbox_id, user.account_id
        ):
            raise _unknown("inbox_id", "inbox", body.inbox_id)
        if body.team_id is not None and not await _exists(session, t.Team, body.team_id, user.account_id):
            raise _unknown("team_id", "team", body.team_id)
        taken = await session.scalar(
            select(t.AssignmentPolicy.id).where(
                (t.AssignmentPolicy.inbox_id == body.inbox_id)
                if body.inbox_id is not None
                else (t.AssignmentPolicy.team_id == body.team_id)
            )
        )
        if taken is not None:
            raise ApiError(409, "conflict", f"assignment policy {taken} already covers this inbox or team")
        now = c.clock()
        policy = t.AssignmentPolicy(
            account_id=user.account_id,
            inbox_id=body.inbox_id,
            team_id=body.team_id,
            strategy=body.strategy,
            capacity=body.capacity,
            agent_capacity={str(k): v for k, v in body.agent_capacity.items()},
            release_on_offline=body.release_on_offline,
            enabled=body.enabled,
            created_at=now,
            updated_at=now,
        )
        session.add(policy)
        await session.flush()
        view = await _policy_view(session, policy)
    await c.assigner.request_drain(user.account_id)
    return view


@api.route(
    "PATCH",
    "/assignment-policies/{id}",
    summary="Change strategy, capacity or release rule (admins)",
    body=PolicyPatch,
    response=PolicyView,
)
async def patch_policy(request: web.Request, body: PolicyPatch) -> PolicyView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        policy = await _policy(session, user, path_id(request))
        for field in ("strategy", "capacity", "release_on_offline", "enabled"):
            value = getattr(body, field)
            if value is not None:
                setattr(policy, field, value)
        if body.agent_capacity is not None:
            policy.agent_capacity = {str(k): v for k, v in body.agent_capacity.items()}
        policy.updated_at = c.clock()
        await session.flush()
        view = await _policy_view(session, policy)
    await c.assigner.request_drain(user.account_id)  # more capacity may have opened
    return view


@api.route("DELETE", "/assignment-policies/{id}", summary="Stop assigning automatically (admins)")
async def delete_policy(request: web.Request) -> None:
    user = require_admin(request)
    async with container_of(request).db.write() as session:
        await session.delete(await _policy(session, user, path_id(request)))


# -- business hours --------------------------------------------------------------------------------


class HoursView(BaseModel):
    inbox_id: int
    business_hours: BusinessHours | None
    open_now: bool


async def _inbox(session: AsyncSession, user: t.User, inbox_id: int) -> t.InboxRow:
    inbox = await session.get(t.InboxRow, inbox_id)
    if (
        inbox is None
        or inbox.account_id != user.account_id
        or not await can_see_inbox(session, user, inbox_id)
    ):
        raise not_found("inbox", inbox_id)
    return inbox


@api.route(
    "GET",
    "/inboxes/{id}/business-hours",
    summary="An inbox's business hours and whether it is open now",
    response=HoursView,
)
async def get_hours(request: web.Request) -> HoursView:
    user = user_of(request)
    c = container_of(request)
    async with c.db.read() as session:
        inbox = await _inbox(session, user, path_id(request))
        hours = hours_of(inbox.settings)
        return HoursView(
            inbox_id=inbox.id, business_hours=hours, open_now=hours.is_open(c.clock()) if hours else True
        )


@api.route(
    "PUT",
    "/inboxes/{id}/business-hours",
    summary="Set an inbox's business hours and out-of-hours reply (admins)",
    body=BusinessHours,
    response=HoursView,
)
async def put_hours(request: web.Request, body: BusinessHours) -> HoursView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        inbox = await _inbox(session, user, path_id(request))
        inbox.settings = {**(inbox.settings or {}), SETTINGS_KEY: body.model_dump(mode="json")}
        return HoursView(inbox_id=inbox.id, business_hours=body, open_now=body.is_open(c.clock()))


@api.route("DELETE", "/inboxes/{id}/business-hours", summary="Remove business hours: always open (admins)")
async def delete_hours(request: web.Request) -> None:
    user = require_admin(request)
    async with container_of(request).db.write() as session:
        inbox = await _inbox(session, user, path_id(request))
        inbox.settings = {k: v for k, v in (inbox.settings or {}).items() if k != SETTINGS_KEY}
