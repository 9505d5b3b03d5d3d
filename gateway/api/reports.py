"""``GET /reports/{summary|agents|teams|inboxes|bots|timeseries|broadcasts}``: the reports, as JSON or CSV.

Periods are local days of the account's time zone (``from``..``to``, inclusive, at most 400 days).
Admins see the whole account; everyone else sees only their own numbers (``agent_id`` is theirs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.context import container_of, user_of
from gateway.api.csvfile import csv_response
from gateway.api.errors import ApiError, forbidden
from gateway.api.spec import ApiRoutes, Handler
from inbox import tables as t
from inbox.access import is_admin, visible_inbox_ids
from inbox.model import ChannelKind
from reports import rows
from reports.queries import MAX_DAYS, GroupBy, Scope

api = ApiRoutes()
DEFAULT_DAYS = 30


class ReportQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date | None = Field(
        default=None, alias="from", description="first local day (default: 30 days ago)"
    )
    to: date | None = Field(default=None, description="last local day, inclusive (default: today)")
    group_by: GroupBy = "day"
    inbox_id: int | None = Field(default=None, ge=1, le=2**62)
    channel: ChannelKind | None = None
    team_id: int | None = Field(default=None, ge=1, le=2**62)
    agent_id: int | None = Field(default=None, ge=1, le=2**62)
    label: str | None = Field(default=None, min_length=1, max_length=64)
    business_hours: bool = Field(default=False, description="time only the inbox's business hours")
    format: Literal["json", "csv"] = "json"


class Report(BaseModel):
    """One report table: the period it covers and its rows (the CSV has the rows' fields as columns)."""

    model_config = ConfigDict(serialize_by_alias=True)

    report: str
    from_: date = Field(serialization_alias="from")
    to: date
    group_by: GroupBy
    business_hours: bool
    rows: Sequence[BaseModel]


class SummaryReport(Report):
    rows: list[rows.SummaryRow]


class AgentsReport(Report):
    rows: list[rows.AgentRow]


class GroupsReport(Report):
    rows: list[rows.GroupRow]


class BotsReport(Report):
    rows: list[rows.BotRow]


class TimeseriesReport(Report):
    rows: list[rows.TimeseriesRow]


class BroadcastsReport(Report):
    rows: list[rows.BroadcastRow]


def _invalid(field: str, problem: str) -> ApiError:
    return ApiError(
        422, "validation_error", f"invalid query: {field}: {problem}", [{"field": field, "problem": problem}]
    )


async def _scope(
    session: AsyncSession, user: t.User, query: ReportQuery, now: datetime
) -> tuple[Scope, set[int]]:
    """The checked scope and the inboxes the user may see; 422 naming the field, 403 for others' rows."""
    account = await session.get(t.Account, user.account_id)
    assert account is not None
    today = now.astimezone(ZoneInfo(account.timezone)).date()
    end = query.to or today
    start = query.from_ or (end - timedelta(days=DEFAULT_DAYS - 1))
    if start > end:
        raise _invalid("from", f"{start} is after to ({end})")
    if (end - start).days + 1 > MAX_DAYS:
        raise _invalid("to", f"the period has {(end - start).days + 1} days; at most {MAX_DAYS}")
    visible = await visible_inbox_ids(session, user)
    if query.inbox_id is not None and query.inbox_id not in visible:
        raise _invalid("inbox_id", f"no inbox {query.inbox_id} you can see")
    if query.team_id is not None:
        team = await session.get(t.Team, query.team_id)
        if team is None or team.account_id != user.account_id:
            raise _invalid("team_id", f"no team {query.team_id}")
    agent_id = query.agent_id
    if agent_id is not None:
        agent = await session.get(t.User, agent_id)
        if agent is None or agent.account_id != user.account_id:
            raise _invalid("agent_id", f"no user {agent_id}")
    if not is_admin(user):
        if agent_id is not None and agent_id != user.id:
            raise forbidden("agents see only their own numbers")
        agent_id = user.id
    scope = Scope(
        account_id=user.account_id,
        start=start,
        end=end,
        group_by=query.group_by,
        inbox_id=query.inbox_id,
        channel_kind=query.channel.value if query.channel else None,
        team_id=query.team_id,
        agent_id=agent_id,
        label=query.label.strip().lower() if query.label else None,
        business_hours=query.business_hours,
    )
    return scope, visible


Build = Callable[[AsyncSession, Scope, set[int], t.User], Awaitable[list[Any]]]


async def _report(
    request: web.Request,
    query: ReportQuery,
    name: str,
    model: type[Report],
    row: type[BaseModel],
    build: Build,
) -> Report | web.Response:
    user = user_of(request)
    c = container_of(request)
    async with c.db.read() as session:
        scope, visible = await _scope(session, user, query, c.clock())
        found = await build(session, scope, visible, user)
    report = model(
        report=name,
        from_=scope.start,
        to=scope.end,
        group_by=scope.group_by,
        business_hours=scope.business_hours,
        rows=found,
    )
    if query.format == "csv":
        return _csv(report, list(row.model_fields))
    return report


def _csv(report: Report, columns: list[str]) -> web.Response:
    values = (row.model_dump(mode="json") for row in report.rows)
    filename = f"switchboard-{report.report}-{report.from_}-{report.to}.csv"
    return csv_response(columns, ([v[c] for c in columns] for v in values), filename)


# -- the reports -------------------------------------------------------------------------------------


async def _summary(session: AsyncSession, scope: Scope, _: set[int], __: t.User) -> list[Any]:
    return await rows.summary(session, scope)


async def _agents(session: AsyncSession, scope: Scope, _: set[int], user: t.User) -> list[Any]:
    return await rows.agents(session, scope, only=None if is_admin(user) else user.id)


async def _teams(session: AsyncSession, scope: Scope, _: set[int], __: t.User) -> list[Any]:
    return await rows.teams(session, scope)


async def _inboxes(session: AsyncSession, scope: Scope, visible: set[int], __: t.User) -> list[Any]:
    return await rows.inboxes(session, scope, visible)


async def _bots(session: AsyncSession, scope: Scope, _: set[int], __: t.User) -> list[Any]:
    return await rows.bots(session, scope)


async def _timeseries(session: AsyncSession, scope: Scope, _: set[int], __: t.User) -> list[Any]:
    return await rows.timeseries(session, scope)


async def _broadcasts(session: AsyncSession, scope: Scope, visible: set[int], __: t.User) -> list[Any]:
    return await rows.broadcasts(session, scope, visible)


REPORTS: list[tuple[str, str, type[Report], type[BaseModel], Build]] = [
    ("summary", "Totals and response times over a period", SummaryReport, rows.SummaryRow, _summary),
    (
        "agents",
        "Per agent: replies, conversations, response and resolution times",
        AgentsReport,
        rows.AgentRow,
        _agents,
    ),
    (
        "teams",
        "Per team: conversations, replies, response and resolution times",
        GroupsReport,
        rows.GroupRow,
        _teams,
    ),
    (
        "inboxes",
        "Per inbox: conversations, replies, response and resolution times",
        GroupsReport,
        rows.GroupRow,
        _inboxes,
    ),
    (
        "bots",
        "Per bot flow: runs, resolutions without hand-off, hand-off rate",
        BotsReport,
        rows.BotRow,
        _bots,
    ),
    (
        "timeseries",
        "Per day, week or month: volumes, response times, bots, billable conversations",
        TimeseriesReport,
        rows.TimeseriesRow,
        _timeseries,
    ),
    (
        "broadcasts",
        "Per broadcast created in the period: sent, delivered, read, replied, failed by reason",
        BroadcastsReport,
        rows.BroadcastRow,
        _broadcasts,
    ),
]


def _operation(name: str, model: type[Report], row: type[BaseModel], build: Build) -> Handler:
    async def handle(request: web.Request, query: ReportQuery) -> Report | web.Response:
        return await _report(request, query, name, model, row, build)

    handle.__name__ = f"report_{name}"  # the OpenAPI operationId
    return handle


for _name, _summary_text, _model, _row, _build in REPORTS:
    api.route("GET", f"/reports/{_name}", summary=_summary_text, query=ReportQuery, response=_model)(
        _operation(_name, _model, _row, _build)
    )
