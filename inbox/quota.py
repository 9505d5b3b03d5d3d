"""The monthly conversation quota: usage, packs, tiers, alert mail and the hard block (DESIGN.md §3).

Counting is exact because it happens inside the send's transaction while holding the account's usage
row for the period: SQLite serializes writers (``BEGIN IMMEDIATE``), PostgreSQL takes
``SELECT ... FOR UPDATE`` on the row. The tier rows (primary key account, period, tier) are written in
the same transaction, so each tier fires once however many processes send at the same moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.db import first_row_once
from inbox.events import record_event
from inbox.i18n import translator
from inbox.mail import queue_mail
from inbox.model import Reason, Role
from inbox.outbox import Refusal, SendContext
from inbox.windows import (
    billable_is_open,
    is_metered,
    new_billable,
    others_alive_in,
    period_of,
    window_open_for,
)

PACK_SIZE = 1000
TIERS = (70, 80, 90, 95, 100)

# Built once: every metered send that opens a conversation runs these (bench/HISTORY.md, profile).
_USAGE = (
    select(t.QuotaUsage)
    .where(t.QuotaUsage.account_id == bindparam("account_id"), t.QuotaUsage.period == bindparam("period"))
    .execution_options(populate_existing=True)
)
_USAGE_LOCKED = _USAGE.with_for_update()
_ACCOUNT_LIMIT = select(t.Account.name, t.Account.language, t.Account.included_conversations).where(
    t.Account.id == bindparam("account_id")
)


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a ``YYYY-MM`` period: midnight UTC on the 1st to midnight on the next 1st."""
    year, month = (int(x) for x in period.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def reached_tier(used: int, limit: int) -> int | None:
    """The highest tier with ``used >= tier % of limit`` (integer arithmetic, no rounding)."""
    reached = [tier for tier in TIERS if used * 100 >= tier * limit]
    return max(reached) if reached else None


def banner_level(tier: int | None) -> str:
    """What the in-app banner shows: none below 70 %, then notice, warning, blocked."""
    if tier is None:
        return "none"
    if tier >= 100:
        return "blocked"
    return "warning" if tier >= 90 else "notice"


@dataclass(frozen=True)
class QuotaStatus:
    period: str
    period_start: datetime
    period_end: datetime
    included: int
    packs: int
    used: int
    cancelled_packs: int = 0

    @property
    def renewing_packs(self) -> int:
        return self.packs - self.cancelled_packs

    @property
    def limit(self) -> int:
        return self.included + self.packs * PACK_SIZE

    @property
    def percent(self) -> float:
        if self.limit <= 0:
            return 100.0
        return round(self.used * 100 / self.limit, 2)

    @property
    def tier(self) -> int | None:
        return reached_tier(self.used, self.limit)

    @property
    def blocked(self) -> bool:
        return self.used >= self.limit


async def _carried_packs(session: AsyncSession, account_id: int, period: str) -> int:
    """Packs renew monthly: a new period starts with the latest earlier one's packs, less cancelled ones."""
    row = (
        await session.execute(
            select(t.QuotaUsage.packs, t.QuotaUsage.cancelled_packs)
            .where(t.QuotaUsage.account_id == account_id, t.QuotaUsage.period < period)
            .order_by(t.QuotaUsage.period.desc())
            .limit(1)
        )
    ).first()
    return max(0, row[0] - row[1]) if row else 0


async def usage_row(
    session: AsyncSession, account_id: int, period: str, now: datetime, *, lock: bool
) -> t.QuotaUsage:
    """The account's usage row for the period, created if missing; locked for update if ``lock``."""
    # (The event log takes its own lock at commit, after this one: no lock order to keep here.)
    locked_key = ("quota_usage_locked", account_id, period)
    held: t.QuotaUsage | None = session.info.get(locked_key)
    if held is not None:  # locked earlier in this transaction: nobody else can have changed it
        return held
    stmt = _USAGE_LOCKED if lock else _USAGE
    params = {"account_id": account_id, "period": period}
    row: t.QuotaUsage | None = await session.scalar(stmt, params)
    if row is not None:  # the usual case: one statement, the row locked if asked
        if lock:
            session.info[locked_key] = row
        return row
    values = {
        "account_id": account_id,
        "period": period,
        "used": 0,
        "packs": await _carried_packs(session, account_id, period),
        "cancelled_packs": 0,
        "updated_at": now,
    }
    dialect = session.bind.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # Two first sends of a month race to create the row; the loser's insert does nothing.
    await session.execute(insert(t.QuotaUsage).values(**values).on_conflict_do_nothing())
    locked: t.QuotaUsage | None = await session.scalar(stmt, params)
    assert locked is not None
    if lock:
        session.info[locked_key] = locked
    return locked


async def quota_status(session: AsyncSession, account_id: int, now: datetime) -> QuotaStatus:
    """Read-only view for ``GET /quota`` (no row is created)."""
    period = period_of(now)
    start, end = period_bounds(period)
    account = await session.get(t.Account, account_id)
    assert account is not None
    row = await session.scalar(
        select(t.QuotaUsage).where(t.QuotaUsage.account_id == account_id, t.QuotaUsage.period == period)
    )
    used = row.used if row else 0
    packs = row.packs if row else await _carried_packs(session, account_id, period)
    cancelled = row.cancelled_packs if row else 0
    return QuotaStatus(period, start, end, account.included_conversations, packs, used, cancelled)


async def cancel_packs(session: AsyncSession, account_id: int, count: int, now: datetime) -> QuotaStatus:
    """Stop renewing packs. They stay in this period's limit and go at its end (no refund mid-month)."""
    row = await usage_row(session, account_id, period_of(now), now, lock=True)
    row.cancelled_packs = min(row.packs, row.cancelled_packs + count)
    row.updated_at = now
    await session.flush()
    return await quota_status(session, account_id, now)


def quota_payload(q: QuotaStatus) -> dict[str, object]:
    """The ``quota.updated`` event: enough for every user's banner to change live."""
    return {
        "period": q.period,
        "used": q.used,
        "limit": q.limit,
        "percent": q.percent,
        "tier": q.tier,
        "blocked": q.blocked,
        "banner": banner_level(q.tier),
    }


async def add_packs(session: AsyncSession, account_id: int, count: int, now: datetime) -> QuotaStatus:
    """Buy packs: they count at once in this period and renew in the next ones."""
    row = await usage_row(session, account_id, period_of(now), now, lock=True)
    row.packs += count
    row.updated_at = now
    await session.flush()
    status = await quota_status(session, account_id, now)
    await record_event(
        session, "quota.updated", account_id=account_id, now=now, payload=quota_payload(status)
    )
    return status


class Quota:
    """Counts billable conversations, fires tier alerts, blocks at 100 %. Also the outbox policy."""

    def __init__(self, public_url: str) -> None:
        self._public_url = public_url.rstrip("/")

    async def check(self, session: AsyncSession, ctx: SendContext) -> Refusal | None:
        # Counted once, when the gate accepts the first message; the dispatch re-check only sends.
        if ctx.stage != "submit" or ctx.message is None or not is_metered(ctx.channel):
            return None
        contact_id = ctx.conversation.contact_id
        if await billable_is_open(session, ctx.channel.id, contact_id, ctx.now):
            return None
        account_id = ctx.conversation.account_id
        period = period_of(ctx.now)
        row = await usage_row(session, account_id, period, ctx.now, lock=True)
        # Another sender may have opened it while we waited for the lock. SQLite's writer holds the
        # whole database from BEGIN IMMEDIATE on, so there nobody can have: the first read stands.
        serialized = session.bind.dialect.name == "sqlite"
        if not serialized and await billable_is_open(session, ctx.channel.id, contact_id, ctx.now):
            return None
        account = await first_row_once(
            session, ("account_limit", account_id), _ACCOUNT_LIMIT, {"account_id": account_id}
        )
        assert account is not None
        limit = account.included_conversations + row.packs * PACK_SIZE
        if row.used >= limit:
            return Refusal(
                Reason.QUOTA_EXHAUSTED,
                f"all {limit} conversations of {period} are used; buy a pack to open new conversations",
            )
        window_open = await window_open_for(session, ctx)
        if ctx.message.id is None:
            await session.flush()  # the submit leaves the INSERT to the first policy needing the id
        session.add(new_billable(ctx, ctx.message.id, window_open))
        row.used += 1
        row.updated_at = ctx.now
        await session.flush()
        await self._alert(
            session, account_id, (account.name, account.language), period, row.used, limit, ctx.now
        )
        return None

    async def release(self, session: AsyncSession, message: t.Message) -> None:
        """Failure hook: a conversation whose first message failed with nothing else in it is not billed."""
        billable = await session.scalar(
            select(t.BillableConversation).where(
                t.BillableConversation.first_message_id == message.id,
                t.BillableConversation.released_at.is_(None),
            )
        )
        if billable is None or await others_alive_in(session, billable, message.id):
            return
        now = message.updated_at
        row = await usage_row(session, billable.account_id, billable.period, now, lock=True)
        billable.released_at = now
        row.used = max(0, row.used - 1)
        row.updated_at = now

    async def _alert(
        self,
        session: AsyncSession,
        account_id: int,
        account: tuple[str, str],  # name, language
        period: str,
        used: int,
        limit: int,
        now: datetime,
    ) -> None:
        top = reached_tier(used, limit)
        if top is None:
            return
        fired = set(
            await session.scalars(
                select(t.QuotaAlert.tier).where(
                    t.QuotaAlert.account_id == account_id, t.QuotaAlert.period == period
                )
            )
        )
        new = [tier for tier in TIERS if tier <= top and tier not in fired]
        if not new:
            return
        highest = max(new)
        recipients = sorted(
            await session.scalars(
                select(t.User.email).where(
                    t.User.account_id == account_id, t.User.role.in_([Role.BILLING_ADMIN, Role.SUPER_ADMIN])
                )
            )
        )
        mail = None
        if recipients:
            subject, body = self.alert_text(*account, period, highest, used, limit)
            mail = queue_mail(
                session, account_id=account_id, to=recipients, subject=subject, body=body, now=now
            )
            await session.flush()
        for tier in new:
            session.add(
                t.QuotaAlert(
                    account_id=account_id,
                    period=period,
                    tier=tier,
                    used=used,
                    limit=limit,
                    mail_id=mail.id if mail is not None else None,
                    created_at=now,
                )
            )
        await session.flush()
        status = await quota_status(session, account_id, now)
        await record_event(
            session, "quota.updated", account_id=account_id, now=now, payload=quota_payload(status)
        )

    def alert_text(
        self, account_name: str, language: str, period: str, tier: int, used: int, limit: int
    ) -> tuple[str, str]:
        """The alert mail in the account's language: the subject names the tier; the body has usage,
        limit, period end and the pack link."""
        tr = translator(language)
        _, end = period_bounds(period)
        subject = tr.gettext(
            "[Switchboard] {account}: {tier}% of the {period} conversation quota used",
            account=account_name,
            tier=tier,
            period=period,
        )
        if tier >= 100:
            subject += tr.gettext(" - new conversations are blocked")
            effect = tr.gettext(
                "No new billable conversation can open until the period ends or you buy a pack. "
                "Conversations already open continue, and inbound messages still arrive."
            )
        else:
            effect = tr.gettext("At 100 % no new billable conversation can open until you buy a pack.")
        body = "\n".join(
            [
                tr.gettext(
                    "Your account {account} has used {used} of {limit} conversations "
                    "in the period {period} ({tier}% tier reached).",
                    account=account_name,
                    used=tr.number(used),
                    limit=tr.number(limit),
                    period=period,
                    tier=tier,
                ),
                "",
                tr.gettext("Usage: {used}", used=tr.number(used)),
                tr.gettext("Limit: {limit}", limit=tr.number(limit)),
                tr.gettext("Period ends: {end} UTC", end=tr.datetime(end)),
                "",
                effect,
                tr.gettext(
                    "Buy packs of {size} conversations: {url}",
                    size=tr.number(PACK_SIZE),
                    url=f"{self._public_url}/#/billing",
                ),
                "",
            ]
        )
        return subject, body
