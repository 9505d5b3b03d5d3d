"""Reading the facts: counts and durations (median, p90, mean) per period, dimension and filter.

Every query is one statement over ``report_facts`` (index: account, kind, local day). Percentiles come
from a window (row number and count per group) so only the two rows around each percentile leave the
database, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Date, and_, cast, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t

GroupBy = Literal["day", "week", "month"]
Dimension = Literal["agent", "team", "inbox", "flow", "bucket"]
F = t.ReportFact
MAX_DAYS = 400


@dataclass(frozen=True)
class Scope:
    """What a report covers: the account, local days ``start``..``end`` (inclusive), the filters."""

    account_id: int
    start: date
    end: date
    group_by: GroupBy = "day"
    inbox_id: int | None = None
    channel_kind: str | None = None
    team_id: int | None = None
    agent_id: int | None = None
    label: str | None = None
    business_hours: bool = False


@dataclass(frozen=True)
class Duration:
    """Seconds: how many, and their median, 90th percentile (linear interpolation) and mean."""

    count: int = 0
    median: float | None = None
    p90: float | None = None
    mean: float | None = None


Key = Any  # a dimension's value: an id, a bucket's first day, or None (no dimension)


def buckets(start: date, end: date, group_by: GroupBy) -> list[date]:
    """The first day of every bucket from ``start`` to ``end`` (weeks start on Monday)."""
    first = bucket_of(start, group_by)
    out: list[date] = []
    day = first
    while day <= end:
        out.append(day)
        if group_by == "day":
            day += timedelta(days=1)
        elif group_by == "week":
            day += timedelta(days=7)
        else:
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return out


def bucket_of(day: date, group_by: GroupBy) -> date:
    if group_by == "week":
        return day - timedelta(days=day.weekday())
    if group_by == "month":
        return day.replace(day=1)
    return day


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


class FactQueries:
    """The reports' statements for one scope, on one read session."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self._session = session
        self._scope = scope
        self._sqlite = session.bind.dialect.name == "sqlite"

    def _key(self, by: Dimension | None) -> ColumnElement[Any] | None:
        if by is None:
            return None
        if by == "bucket":
            group_by = self._scope.group_by
            if group_by == "day":
                return F.day.expression
            if self._sqlite:
                if group_by == "week":
                    return func.date(F.day, "weekday 0", "-6 days")
                return func.strftime("%Y-%m-01", F.day)
            return cast(func.date_trunc(group_by, F.day), Date)
        columns = {"agent": F.agent_id, "team": F.team_id, "inbox": F.inbox_id, "flow": F.flow_id}
        return columns[by].expression

    def _where(self, kinds: Sequence[str], origin: str | None) -> list[ColumnElement[bool]]:
        s = self._scope
        conds: list[ColumnElement[bool]] = [
            F.account_id == s.account_id,
            F.kind.in_(kinds) if len(kinds) > 1 else F.kind == kinds[0],
            F.day >= s.start,
            F.day <= s.end,
            F.void.is_(False),
        ]
        if origin is not None:
            conds.append(F.origin == origin)
        if s.inbox_id is not None:
            conds.append(F.inbox_id == s.inbox_id)
        if s.channel_kind is not None:
            conds.append(F.channel_kind == s.channel_kind)
        if s.team_id is not None:
            conds.append(F.team_id == s.team_id)
        if s.agent_id is not None:
            conds.append(F.agent_id == s.agent_id)
        if s.label is not None:
            label = t.ConversationLabel
            conds.append(
                exists().where(and_(label.conversation_id == F.conversation_id, label.label == s.label))
            )
        return conds

    def _normal(self, by: Dimension | None, value: Any) -> Key:
        if by is None:
            return None
        if by == "bucket":
            return _as_date(value)
        return None if value is None else int(value)

    async def counts(
        self, kinds: Sequence[str], by: Dimension | None = None, *, origin: str | None = None
    ) -> dict[Key, dict[str, int]]:
        """``{key: {kind: count}}`` of the facts of ``kinds`` (keys with none are absent)."""
        key = self._key(by)
        cols = [key.label("k")] if key is not None else [literal(0).label("k")]
        stmt = select(*cols, F.kind, func.count()).where(*self._where(kinds, origin)).group_by(F.kind)
        if key is not None:
            stmt = stmt.group_by(key)
        out: dict[Key, dict[str, int]] = {}
        for k, kind, n in await self._session.execute(stmt):
            out.setdefault(self._normal(by, k), {})[kind] = int(n)
        return out

    async def conversations(
        self, kinds: Sequence[str], by: Dimension | None = None, *, origin: str | None = None
    ) -> dict[Key, int]:
        """How many distinct conversations had a fact of ``kinds``, per key."""
        key = self._key(by)
        cols = [key.label("k")] if key is not None else [literal(0).label("k")]
        stmt = select(*cols, func.count(F.conversation_id.distinct())).where(*self._where(kinds, origin))
        if key is not None:
            stmt = stmt.group_by(key)
        return {self._normal(by, k): int(n) for k, n in await self._session.execute(stmt)}

    async def durations(self, kind: str, by: Dimension | None = None) -> dict[Key, Duration]:
        """Count, median, p90 and mean of the facts' seconds (business seconds if the scope says so)."""
        value = F.business_seconds if self._scope.business_hours else F.seconds
        key = self._key(by)
        partition = [key] if key is not None else None
        inner = (
            select(
                (key if key is not None else literal(0)).label("k"),
                value.label("v"),
                func.row_number().over(partition_by=partition, order_by=value).label("rn"),
                func.count().over(partition_by=partition).label("n"),
                func.avg(value).over(partition_by=partition).label("mean"),
            )
            .where(*self._where([kind], None), value.is_not(None))
            .subquery()
        )
        n, rn = inner.c.n, inner.c.rn
        stmt = select(inner.c.k, inner.c.rn, inner.c.v, inner.c.n, inner.c.mean).where(
            or_(
                rn == (n - 1) // 2 + 1,
                rn == n // 2 + 1,
                rn == (9 * (n - 1)) // 10 + 1,
                rn == (9 * (n - 1) + 9) // 10 + 1,
            )
        )
        ranks: dict[Key, dict[int, float]] = {}
        sizes: dict[Key, tuple[int, float]] = {}
        for k, r, v, size, mean in await self._session.execute(stmt):
            key_value = self._normal(by, k)
            ranks.setdefault(key_value, {})[int(r)] = float(v)
            sizes[key_value] = (int(size), float(mean))
        out: dict[Key, Duration] = {}
        for key_value, (size, mean) in sizes.items():
            at = ranks[key_value]
            out[key_value] = Duration(
                size, _percentile(at, size, 1, 2), _percentile(at, size, 9, 10), round(mean, 1)
            )
        return out


def _percentile(ranks: dict[int, float], n: int, num: int, den: int) -> float:
    """The ``num/den`` percentile with linear interpolation, from the values at 1-based ranks."""
    lo, hi = (num * (n - 1)) // den, (num * (n - 1) + den - 1) // den
    low, high = ranks[lo + 1], ranks[hi + 1]
    fraction = num * (n - 1) / den - lo
    return round(low + (high - low) * fraction, 1)
