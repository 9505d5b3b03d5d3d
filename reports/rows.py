"""The report tables: one flat row model each (the JSON rows and the CSV columns are the same)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.broadcasts import stats
from reports.queries import Duration, FactQueries, Key, Scope, buckets

TIMED = ("first_response", "next_response", "resolved")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class SummaryRow(BaseModel):
    opened: int
    resolved: int
    reopened: int
    incoming: int
    outgoing: int
    refused: int
    agent_replies: int
    first_responses: int
    first_response_median: float | None
    first_response_p90: float | None
    first_response_mean: float | None
    next_responses: int
    next_response_median: float | None
    next_response_p90: float | None
    next_response_mean: float | None
    resolution_median: float | None
    resolution_p90: float | None
    resolution_mean: float | None
    bot_runs: int
    bot_resolved: int
    handoffs: int
    handoff_rate: float | None
    billable_conversations: int


class AgentRow(BaseModel):
    agent_id: int
    name: str
    replies: int
    conversations: int
    first_responses: int
    first_response_median: float | None
    first_response_p90: float | None
    first_response_mean: float | None
    next_response_median: float | None
    resolved: int
    resolution_median: float | None


class GroupRow(BaseModel):
    """A team's or an inbox's row (``id`` null: conversations in no team)."""

    id: int | None
    name: str
    opened: int
    resolved: int
    incoming: int
    agent_replies: int
    first_response_median: float | None
    first_response_p90: float | None
    first_response_mean: float | None
    resolution_median: float | None
    resolution_p90: float | None
    resolution_mean: float | None


class BotRow(BaseModel):
    flow_id: int
    name: str
    runs: int
    resolved: int
    handoffs: int
    handoff_rate: float | None
    resolution_rate: float | None


class TimeseriesRow(BaseModel):
    bucket: date
    opened: int
    resolved: int
    incoming: int
    outgoing: int
    agent_replies: int
    first_response_median: float | None
    first_response_p90: float | None
    first_response_mean: float | None
    resolution_median: float | None
    bot_runs: int
    handoffs: int
    billable_conversations: int


COUNTED = (
    "opened",
    "resolved",
    "reopened",
    "incoming",
    "outgoing",
    "refused",
    "bot_run",
    "bot_resolved",
    "handoff",
    "billable",
)


async def summary(session: AsyncSession, scope: Scope) -> list[SummaryRow]:
    q = FactQueries(session, scope)
    c = (await q.counts(COUNTED)).get(None, {})
    replies = (await q.counts(["outgoing"], origin="agent")).get(None, {}).get("outgoing", 0)
    d = {kind: (await q.durations(kind)).get(None, Duration()) for kind in TIMED}
    first, following, resolution = d["first_response"], d["next_response"], d["resolved"]
    return [
        SummaryRow(
            opened=c.get("opened", 0),
            resolved=c.get("resolved", 0),
            reopened=c.get("reopened", 0),
            incoming=c.get("incoming", 0),
            outgoing=c.get("outgoing", 0),
            refused=c.get("refused", 0),
            agent_replies=replies,
            first_responses=first.count,
            first_response_median=first.median,
            first_response_p90=first.p90,
            first_response_mean=first.mean,
            next_responses=following.count,
            next_response_median=following.median,
            next_response_p90=following.p90,
            next_response_mean=following.mean,
            resolution_median=resolution.median,
            resolution_p90=resolution.p90,
            resolution_mean=resolution.mean,
            bot_runs=c.get("bot_run", 0),
            bot_resolved=c.get("bot_resolved", 0),
            handoffs=c.get("handoff", 0),
            handoff_rate=_rate(c.get("handoff", 0), c.get("bot_run", 0)),
            billable_conversations=c.get("billable", 0),
        )
    ]


async def agents(session: AsyncSession, scope: Scope, only: int | None = None) -> list[AgentRow]:
    """Every user of the account (or only ``only``), most replies first."""
    q = FactQueries(session, scope)
    users = select(t.User.id, t.User.name).where(t.User.account_id == scope.account_id)
    if only is not None:
        users = users.where(t.User.id == only)
    people = list(await session.execute(users.order_by(t.User.id)))
    replies = await q.counts(["outgoing"], "agent", origin="agent")
    conversations = await q.agent_conversations()
    resolved = await q.counts(["resolved"], "agent")
    first = await q.durations("first_response", "agent")
    following = await q.durations("next_response", "agent")
    resolution = await q.durations("resolved", "agent")
    rows = []
    for user_id, name in people:
        f = first.get(user_id, Duration())
        rows.append(
            AgentRow(
                agent_id=user_id,
                name=name,
                replies=replies.get(user_id, {}).get("outgoing", 0),
                conversations=conversations.get(user_id, 0),
                first_responses=f.count,
                first_response_median=f.median,
                first_response_p90=f.p90,
                first_response_mean=f.mean,
                next_response_median=following.get(user_id, Duration()).median,
                resolved=resolved.get(user_id, {}).get("resolved", 0),
                resolution_median=resolution.get(user_id, Duration()).median,
            )
        )
    rows.sort(key=lambda r: (-r.replies, r.agent_id))
    return rows


async def _groups(
    session: AsyncSession, scope: Scope, dim: Literal["team", "inbox"], names: list[tuple[int | None, str]]
) -> list[GroupRow]:
    q = FactQueries(session, scope)
    c = await q.counts(["opened", "resolved", "incoming"], dim)
    replies = await q.counts(["outgoing"], dim, origin="agent")
    first = await q.durations("first_response", dim)
    resolution = await q.durations("resolved", dim)
    rows = []
    for key, name in names:
        counts: dict[str, int] = c.get(key, {})
        f, r = first.get(key, Duration()), resolution.get(key, Duration())
        rows.append(
            GroupRow(
                id=key,
                name=name,
                opened=counts.get("opened", 0),
                resolved=counts.get("resolved", 0),
                incoming=counts.get("incoming", 0),
                agent_replies=replies.get(key, {}).get("outgoing", 0),
                first_response_median=f.median,
                first_response_p90=f.p90,
                first_response_mean=f.mean,
                resolution_median=r.median,
                resolution_p90=r.p90,
                resolution_mean=r.mean,
            )
        )
    return rows


async def teams(session: AsyncSession, scope: Scope) -> list[GroupRow]:
    found = await session.execute(
        select(t.Team.id, t.Team.name).where(t.Team.account_id == scope.account_id).order_by(t.Team.id)
    )
    names: list[tuple[int | None, str]] = [(i, n) for i, n in found]
    return await _groups(session, scope, "team", [*names, (None, "(no team)")])


async def inboxes(session: AsyncSession, scope: Scope, visible: set[int]) -> list[GroupRow]:
    found = await session.execute(
        select(t.InboxRow.id, t.InboxRow.name)
        .where(t.InboxRow.account_id == scope.account_id, t.InboxRow.id.in_(visible))
        .order_by(t.InboxRow.id)
    )
    return await _groups(session, scope, "inbox", [(i, n) for i, n in found])


async def bots(session: AsyncSession, scope: Scope) -> list[BotRow]:
    q = FactQueries(session, scope)
    c = await q.counts(["bot_run", "bot_resolved", "handoff"], "flow")
    flows = await session.execute(
        select(t.BotFlow.id, t.BotFlow.name)
        .where(t.BotFlow.account_id == scope.account_id)
        .order_by(t.BotFlow.id)
    )
    rows = []
    for flow_id, name in flows:
        counts: dict[str, int] = c.get(flow_id, {})
        runs = counts.get("bot_run", 0)
        rows.append(
            BotRow(
                flow_id=flow_id,
                name=name,
                runs=runs,
                resolved=counts.get("bot_resolved", 0),
                handoffs=counts.get("handoff", 0),
                handoff_rate=_rate(counts.get("handoff", 0), runs),
                resolution_rate=_rate(counts.get("bot_resolved", 0), runs),
            )
        )
    return rows


async def timeseries(session: AsyncSession, scope: Scope) -> list[TimeseriesRow]:
    q = FactQueries(session, scope)
    c = await q.counts(COUNTED, "bucket")
    replies = await q.counts(["outgoing"], "bucket", origin="agent")
    first = await q.durations("first_response", "bucket")
    resolution = await q.durations("resolved", "bucket")
    rows = []
    for bucket in buckets(scope.start, scope.end, scope.group_by):
        key: Key = bucket
        counts: dict[str, int] = c.get(key, {})
        f = first.get(key, Duration())
        rows.append(
            TimeseriesRow(
                bucket=bucket,
                opened=counts.get("opened", 0),
                resolved=counts.get("resolved", 0),
                incoming=counts.get("incoming", 0),
                outgoing=counts.get("outgoing", 0),
                agent_replies=replies.get(key, {}).get("outgoing", 0),
                first_response_median=f.median,
                first_response_p90=f.p90,
                first_response_mean=f.mean,
                resolution_median=resolution.get(key, Duration()).median,
                bot_runs=counts.get("bot_run", 0),
                handoffs=counts.get("handoff", 0),
                billable_conversations=counts.get("billable", 0),
            )
        )
    return rows


class BroadcastRow(BaseModel):
    """A broadcast created in the period: its recipients by how far they got (``sent`` counts the
    delivered and read ones too), and the failures by reason (``reason=count; …``)."""

    broadcast_id: int
    title: str
    channel_kind: str
    status: str
    created_at: datetime
    recipients: int
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    canceled: int
    failed_by_reason: str


async def broadcasts(session: AsyncSession, scope: Scope, visible: set[int]) -> list[BroadcastRow]:
    """Broadcasts created on the period's local days in inboxes the user sees, newest first; an inbox,
    channel or agent (who created it) filter applies, team and label do not (a broadcast has neither)."""
    account = await session.get(t.Account, scope.account_id)
    assert account is not None
    zone = ZoneInfo(account.timezone)
    since = datetime.combine(scope.start, time(), zone).astimezone(UTC)
    until = datetime.combine(scope.end + timedelta(days=1), time(), zone).astimezone(UTC)
    b, c = t.Broadcast, t.Channel
    query = (
        select(b, c.kind)
        .join(c, c.id == b.channel_id)
        .where(
            b.account_id == scope.account_id,
            b.created_at >= since,
            b.created_at < until,
            c.inbox_id.in_(visible),
        )
        .order_by(b.created_at.desc(), b.id.desc())
    )
    if scope.inbox_id is not None:
        query = query.where(c.inbox_id == scope.inbox_id)
    if scope.channel_kind is not None:
        query = query.where(c.kind == scope.channel_kind)
    if scope.agent_id is not None:
        query = query.where(b.created_by == scope.agent_id)
    rows = []
    for broadcast, kind in (await session.execute(query)).all():
        s = await stats(session, broadcast)
        rows.append(
            BroadcastRow(
                broadcast_id=broadcast.id,
                title=broadcast.title,
                channel_kind=kind,
                status=broadcast.status,
                created_at=broadcast.created_at,
                recipients=s.total,
                sent=s.sent,
                delivered=s.delivered,
                read=s.read,
                replied=s.replied,
                failed=s.failed,
                canceled=s.canceled,
                failed_by_reason="; ".join(f"{k}={n}" for k, n in sorted(s.failed_by_reason.items())),
            )
        )
    return rows
