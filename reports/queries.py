"""Reading the reports: counts and durations (median, p90, mean) per period, dimension and filter.

Counts and means are sums over the roll-ups (``report_rollups``, exact). Medians and p90 are exact
when the period holds at most ``EXACT_LIMIT`` timed facts of a kind under the filters: then they come
from ``report_facts`` by a window (row number and count per group, so only the rows around each
percentile leave the database). Above that they come from the roll-ups' histograms: within 1/32
(3.1 %) of the exact figure (``reports.rollup``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    String,
    and_,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from reports.rollup import bucket_value

GroupBy = Literal["day", "week", "month"]
Dimension = Literal["agent", "team", "inbox", "flow", "bucket"]
F = t.ReportFact
R = t.ReportRollup
A = t.ReportAgentDay
MAX_DAYS = 400
EXACT_LIMIT = 10_000


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


@lru_cache(maxsize=1024)
def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


class FactQueries:
    """The reports' statements for one scope, on one read session."""

    def __init__(self, session: AsyncSession, scope: Scope, exact_limit: int = EXACT_LIMIT) -> None:
        self._session = session
        self._scope = scope
        self._sqlite = session.bind.dialect.name == "sqlite"
        self._exact_limit = exact_limit

    def _key(self, by: Dimension | None, table: Any = F) -> ColumnElement[Any] | None:
        if by is None:
            return None
        if by == "bucket":
            group_by = self._scope.group_by
            if group_by == "day":
                # The text on SQLite: one date parse per distinct day (``_as_date``), not per row.
                day: ColumnElement[Any] = table.day.expression
                return type_coerce(day, String) if self._sqlite else day
            if self._sqlite:
                if group_by == "week":
                    return func.date(table.day, "weekday 0", "-6 days")
                return func.strftime("%Y-%m-01", table.day)
            return cast(func.date_trunc(group_by, table.day), Date)
        columns = {"agent": "agent_id", "team": "team_id", "inbox": "inbox_id", "flow": "flow_id"}
        return getattr(table, columns[by]).expression  # type: ignore[no-any-return]

    def _rolled(
        self, kinds: Sequence[str], origin: str | None, measure: int = 0, *, any_label: bool = False
    ) -> list[ColumnElement[bool]]:
        """The roll-up rows in scope (``any_label``: ignore the label filter)."""
        s = self._scope
        conds: list[ColumnElement[bool]] = [
            R.account_id == s.account_id,
            R.kind.in_(kinds) if len(kinds) > 1 else R.kind == kinds[0],
            R.label == ("" if any_label else (s.label or "")),
            R.measure == measure,
            R.day >= s.start,
            R.day <= s.end,
        ]
        if origin is not None:
            conds.append(R.origin == origin)
        if s.inbox_id is not None:
            conds.append(R.inbox_id == s.inbox_id)
        if s.channel_kind is not None:
            conds.append(R.channel_kind == s.channel_kind)
        if s.team_id is not None:
            conds.append(R.team_id == s.team_id)
        if s.agent_id is not None:
            conds.append(R.agent_id == s.agent_id)
        return conds

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
        return None if value is None or value == 0 else int(value)  # the roll-ups' 0: none

    async def counts(
        self, kinds: Sequence[str], by: Dimension | None = None, *, origin: str | None = None
    ) -> dict[Key, dict[str, int]]:
        """``{key: {kind: count}}`` of the facts of ``kinds`` (keys with none may be absent)."""
        key = self._key(by, R)
        cols = [key.label("k")] if key is not None else [literal(0).label("k")]
        stmt = select(*cols, R.kind, func.sum(R.n)).where(*self._rolled(kinds, origin)).group_by(R.kind)
        if key is not None:
            stmt = stmt.group_by(key)
        out: dict[Key, dict[str, int]] = {}
        for k, kind, n in await self._session.execute(stmt):
            counts = out.setdefault(self._normal(by, k), {})
            counts[kind] = counts.get(kind, 0) + int(n)
        return out

    async def agent_conversations(self) -> dict[Key, int]:
        """Per agent, how many conversations they replied in during the period (``report_agent_days``:
        each conversation once, on its first day of the period with the agent's reply)."""
        s = self._scope
        conds: list[ColumnElement[bool]] = [
            A.account_id == s.account_id,
            A.label == (s.label or ""),
            A.day >= s.start,
            A.day <= s.end,
            or_(A.previous.is_(None), A.previous < s.start),
        ]
        if s.inbox_id is not None:
            conds.append(A.inbox_id == s.inbox_id)
        if s.channel_kind is not None:
            conds.append(A.channel_kind == s.channel_kind)
        if s.team_id is not None:
            conds.append(A.team_id == s.team_id)
        if s.agent_id is not None:
            conds.append(A.agent_id == s.agent_id)
        stmt = select(A.agent_id, func.count()).where(*conds).group_by(A.agent_id)
        return {int(k): int(n) for k, n in await self._session.execute(stmt)}

    async def durations(self, kind: str, by: Dimension | None = None) -> dict[Key, Duration]:
        """Count, median, p90 and mean of the facts' seconds (business seconds if the scope says so)."""
        key = self._key(by, R)
        cols = [key.label("k")] if key is not None else [literal(0).label("k")]
        n, total = cast(func.sum(R.n), BigInteger), cast(func.sum(R.total), BigInteger)
        stmt = (
            select(*cols, R.bucket, n.label("n"), total.label("total"))
            .where(*self._rolled([kind], None, 1 if self._scope.business_hours else 0))
            .group_by(R.bucket)
            .having(n > 0)
        )
        if key is not None:
            stmt = stmt.group_by(key)
        # Only the buckets holding the ranks around the median and p90 leave the database: a running
        # count per key says which.
        g = stmt.subquery()
        per_key = [g.c.k] if key is not None else None
        upto = cast(func.sum(g.c.n).over(partition_by=per_key, order_by=g.c.bucket), BigInteger)
        size = cast(func.sum(g.c.n).over(partition_by=per_key), BigInteger)
        seconds = cast(func.sum(g.c.total).over(partition_by=per_key), BigInteger)
        w = select(
            g.c.k, g.c.bucket, g.c.n, upto.label("upto"), size.label("size"), seconds.label("seconds")
        ).subquery()
        below = w.c.upto - w.c.n
        ranks = [
            (num * (w.c.size - 1) + extra) // den + 1
            for num, den in ((1, 2), (9, 10))
            for extra in (0, den - 1)
        ]
        near = select(w.c.k, w.c.bucket, w.c.n, w.c.upto, w.c.size, w.c.seconds).where(
            or_(*[and_(below < rank, rank <= w.c.upto) for rank in ranks])
        )
        found: dict[Key, tuple[int, int, list[tuple[int, int, int]]]] = {}
        for k, bucket, count, up, whole, secs in await self._session.execute(near):
            entry = found.setdefault(self._normal(by, k), (int(whole), int(secs), []))
            entry[2].append((int(bucket), int(count), int(up)))
        if await self._few(kind, sum(whole for whole, _, _ in found.values())):
            return await self._exact(kind, by)
        return {k: _from_ranks(whole, secs, rows) for k, (whole, secs, rows) in found.items()}

    async def _few(self, kind: str, count: int) -> bool:
        """Whether the exact figures are cheap: reading them scans the kind's facts of the period under
        every filter but the label (applied per fact), so those must be few."""
        if count > self._exact_limit:
            return False
        if self._scope.label is None:
            return True
        stmt = select(func.sum(R.n)).where(*self._rolled([kind], None, any_label=True))
        return int(await self._session.scalar(stmt) or 0) <= self._exact_limit

    async def _exact(self, kind: str, by: Dimension | None) -> dict[Key, Duration]:
        """``durations`` read from the facts themselves."""
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


def _from_histogram(histogram: dict[int, tuple[int, int]]) -> Duration:
    """A duration from bucket counts ``{bucket: (count, seconds)}``."""
    rows, upto = [], 0
    for bucket in sorted(histogram):
        upto += histogram[bucket][0]
        rows.append((bucket, histogram[bucket][0], upto))
    return _from_ranks(upto, sum(s for _, s in histogram.values()), rows)


def _from_ranks(size: int, seconds: int, rows: Sequence[tuple[int, int, int]]) -> Duration:
    """A duration from ``size`` values summing to ``seconds`` and some of their buckets as
    ``(bucket, count, running count)``: each rank's value is the middle of the bucket holding it."""
    wanted = {(n * (size - 1)) // d + 1 for n, d in ((1, 2), (9, 10))}
    wanted |= {(n * (size - 1) + d - 1) // d + 1 for n, d in ((1, 2), (9, 10))}
    ranks: dict[int, float] = {}
    for bucket, n, upto in rows:
        for rank in wanted:
            if upto - n < rank <= upto:
                ranks[rank] = bucket_value(bucket)
    return Duration(
        size, _percentile(ranks, size, 1, 2), _percentile(ranks, size, 9, 10), round(seconds / size, 1)
    )


def _percentile(ranks: dict[int, float], n: int, num: int, den: int) -> float:
    """The ``num/den`` percentile with linear interpolation, from the values at 1-based ranks."""
    lo, hi = (num * (n - 1)) // den, (num * (n - 1) + den - 1) // den
    low, high = ranks[lo + 1], ranks[hi + 1]
    fraction = num * (n - 1) / den - lo
    return round(low + (high - low) * fraction, 1)
