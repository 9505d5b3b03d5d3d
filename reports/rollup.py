"""The roll-ups the reports read: facts summed per local day and dimension, written in the facts' write.

``report_rollups`` holds, per account, kind, label (``""``: all), local day and the filter and group
dimensions, how many facts there are and the sum of their seconds; a timed kind has one row per
histogram bucket of its seconds and of its business seconds, so medians and p90 come from bucket counts.

Buckets: seconds below 32 each have their own; above, every power of two is cut in 16 equal parts
and a bucket stands for its middle, so a value read from a bucket is within 1/32 (3.1 %) of the
value itself (see ``bucket_of``/``bucket_value``).

``report_agent_days``: an agent replied in a conversation on a day, with the agent's previous day in it,
so "conversations an agent replied in over a period" is a count of rows.

A label counts for the whole conversation, as the label filter on the facts did: when a conversation's
labels change, its facts are moved between the labels' rows (``move_labels``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Table, and_, bindparam, case, delete, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from inbox import tables as t

EXACT = 32  # seconds below this have a bucket each
PARTS = 16  # buckets per power of two above it
MAX_BUCKET_BITS = 31  # the facts keep seconds in 32-bit integers

_ROLLUP: Table = t.ReportRollup.__table__  # type: ignore[assignment]
_DAYS: Table = t.ReportAgentDay.__table__  # type: ignore[assignment]
KEY = (
    "account_id",
    "kind",
    "label",
    "measure",
    "day",
    "inbox_id",
    "team_id",
    "agent_id",
    "channel_kind",
    "flow_id",
    "origin",
    "bucket",
)
_DAY_KEY = ("account_id", "label", "day", "agent_id", "conversation_id")
RolledKey = tuple[Any, ...]


def bucket_of(seconds: int) -> int:
    """The histogram bucket of a duration (0 for negative ones, which facts never have)."""
    if seconds < EXACT:
        return max(0, seconds)
    octave = seconds.bit_length() - 1  # 2**octave <= seconds < 2**(octave + 1)
    first = EXACT + (octave - EXACT.bit_length() + 1) * PARTS
    return first + (seconds >> (octave - PARTS.bit_length() + 1)) - PARTS


def bucket_range(bucket: int) -> tuple[int, int]:
    """The whole seconds a bucket holds: ``lo`` to ``hi`` inclusive."""
    if bucket < EXACT:
        return bucket, bucket
    octave, part = divmod(bucket - EXACT, PARTS)
    octave += EXACT.bit_length() - 1
    width = 1 << (octave - PARTS.bit_length() + 1)
    lo = (1 << octave) + part * width
    return lo, lo + width - 1


def bucket_value(bucket: int) -> float:
    """What a bucket stands for: the middle of its seconds."""
    lo, hi = bucket_range(bucket)
    return (lo + hi) / 2


def bucket_sql(value: ColumnElement[Any]) -> ColumnElement[int]:
    """``bucket_of`` in SQL (SQLite and PostgreSQL), for filling the roll-ups from stored facts."""

    def octave_bucket(octave: int) -> ColumnElement[Any]:
        first = EXACT + (octave - EXACT.bit_length() + 1) * PARTS
        return literal(first - PARTS) + value // (1 << (octave - PARTS.bit_length() + 1))

    whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = [(value < EXACT, value)]
    last = MAX_BUCKET_BITS - 1
    for octave in range(EXACT.bit_length() - 1, last):
        whens.append((value < (1 << (octave + 1)), octave_bucket(octave)))
    return case(*whens, else_=octave_bucket(last))


def _keys(fact: Mapping[str, Any], label: str) -> list[tuple[RolledKey, int]]:
    """The roll-up keys a fact adds to under ``label``, each with the seconds it adds."""
    base = (
        fact["account_id"],
        fact["kind"],
        label,
    )
    dims = (
        fact["inbox_id"] or 0,
        fact["team_id"] or 0,
        fact["agent_id"] or 0,
        fact["channel_kind"] or "",
        fact["flow_id"] or 0,
        fact["origin"] or "",
    )
    seconds, business = fact["seconds"], fact["business_seconds"]
    day = fact["day"]
    if seconds is None:
        return [((*base, 0, day, *dims, 0), 0)]
    out = [((*base, 0, day, *dims, bucket_of(seconds)), seconds)]
    if business is not None:
        out.append(((*base, 1, day, *dims, bucket_of(business)), business))
    return out


class Deltas:
    """Changes to the roll-ups gathered during a write, applied at its end in key order (so two
    concurrent writes lock the rows they share in the same order)."""

    def __init__(self) -> None:
        self._sums: dict[RolledKey, list[int]] = {}

    def add(self, fact: Mapping[str, Any], labels: Iterable[str], sign: int = 1) -> None:
        """Count ``fact`` (``sign`` -1: take it back) under each of ``labels`` (``""``: all)."""
        for label in labels:
            for key, seconds in _keys(fact, label):
                sums = self._sums.setdefault(key, [0, 0])
                sums[0] += sign
                sums[1] += sign * seconds

    async def write(self, session: AsyncSession) -> None:
        rows = [
            {**dict(zip(KEY, key, strict=True)), "n": n, "total": total}
            for key, (n, total) in sorted(self._sums.items(), key=_order)
            if n or total
        ]
        if not rows:
            return
        stmt = _upsert(session)(_ROLLUP)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=list(KEY),
                set_={"n": _ROLLUP.c.n + stmt.excluded.n, "total": _ROLLUP.c.total + stmt.excluded.total},
            ),
            rows,
        )


def _order(item: tuple[RolledKey, list[int]]) -> tuple[Any, ...]:
    return tuple(str(part) for part in item[0])


def _upsert(session: AsyncSession) -> Any:
    return sqlite_insert if session.bind.dialect.name == "sqlite" else pg_insert


async def facts_of(session: AsyncSession, conversation_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """The counted (not void) stored facts of some conversations, as the roll-ups need them."""
    ids = sorted(set(conversation_ids))
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    columns = ["conversation_id", "account_id", "kind", "day", "inbox_id", "team_id", "agent_id"]
    columns += ["channel_kind", "flow_id", "origin", "seconds", "business_seconds"]
    fact = t.ReportFact.__table__.c
    rows = await session.execute(
        select(*[fact[c] for c in columns]).where(fact.conversation_id.in_(ids), fact.void.is_(False))
    )
    for row in rows.mappings():
        out[row["conversation_id"]].append(dict(row))
    return out


async def move_labels(
    session: AsyncSession, deltas: Deltas, changes: Mapping[int, tuple[Sequence[str], Sequence[str]]]
) -> None:
    """Conversations whose labels went from ``old`` to ``new``: their stored facts and agent days follow."""
    moved = {i: (old, new) for i, (old, new) in changes.items() if set(old) != set(new)}
    if not moved:
        return
    stored = await facts_of(session, moved)
    for conversation_id, (old, new) in sorted(moved.items()):
        gone, added = sorted(set(old) - set(new)), sorted(set(new) - set(old))
        for fact in stored[conversation_id]:
            deltas.add(fact, gone, -1)
            deltas.add(fact, added, 1)
        if gone:
            await session.execute(
                delete(_DAYS).where(_DAYS.c.conversation_id == conversation_id, _DAYS.c.label.in_(gone))
            )
        columns = [c.name for c in _DAYS.columns]
        for label in added:
            copied = [literal(label).label("label") if c == "label" else _DAYS.c[c] for c in columns]
            await session.execute(
                insert(_DAYS).from_select(
                    columns,
                    select(*copied).where(_DAYS.c.conversation_id == conversation_id, _DAYS.c.label == ""),
                )
            )


async def add_agent_days(
    session: AsyncSession,
    replies: Mapping[tuple[int, int, date], Mapping[str, Any]],
    labels: Mapping[int, Sequence[str]],
) -> None:
    """Agent replies of this write, keyed (conversation, agent, day), each with its first reply's fact:
    a row per new (conversation, agent, day) under every label, and ``previous`` kept right."""
    if not replies:
        return
    conversations = sorted({c for c, _, _ in replies})
    found = await session.execute(
        select(_DAYS.c.conversation_id, _DAYS.c.agent_id, _DAYS.c.day, _DAYS.c.previous).where(
            _DAYS.c.conversation_id.in_(conversations), _DAYS.c.label == ""
        )
    )
    stored: dict[tuple[int, int], dict[date, date | None]] = {}
    for conversation_id, agent_id, day, before in found:
        stored.setdefault((conversation_id, agent_id), {})[day] = before
    new: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    pairs: dict[tuple[int, int], list[date]] = {}
    for conversation_id, agent_id, day in replies:
        pairs.setdefault((conversation_id, agent_id), []).append(day)
    for pair, days in sorted(pairs.items()):
        have = stored.get(pair, {})
        previous: date | None = None
        for day in sorted(set(have) | set(days)):
            if day in have:
                if have[day] != previous:  # a day written out of order came before it
                    moved.append({"b_c": pair[0], "b_a": pair[1], "b_d": day, "b_p": previous})
            else:
                fact = replies[(pair[0], pair[1], day)]
                for label in ("", *labels.get(pair[0], ())):
                    new.append(
                        {
                            "account_id": fact["account_id"],
                            "label": label,
                            "day": day,
                            "agent_id": pair[1],
                            "conversation_id": pair[0],
                            "previous": previous,
                            "inbox_id": fact["inbox_id"] or 0,
                            "team_id": fact["team_id"] or 0,
                            "channel_kind": fact["channel_kind"] or "",
                        }
                    )
            previous = day
    if moved:
        await session.execute(
            update(_DAYS)
            .where(
                and_(
                    _DAYS.c.conversation_id == bindparam("b_c"),
                    _DAYS.c.agent_id == bindparam("b_a"),
                    _DAYS.c.day == bindparam("b_d"),
                )
            )
            .values(previous=bindparam("b_p")),
            moved,
        )
    if new:
        new.sort(key=lambda row: tuple(str(row[k]) for k in _DAY_KEY))
        await session.execute(insert(_DAYS), new)
