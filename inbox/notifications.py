"""Notifications: notices for users, derived from the event log inside the write that records it.

``Notifier`` is a ``Database.on_events`` hook: from the events of a transaction it works out who should
hear about what (a new conversation in my inboxes, assigned to me, a new message in my conversation, a
mention in a note, a bot hand-off, a ticket assigned to me, a quota tier reached), keeps what each
user's preferences ask for as ``notifications`` rows (in-app and/or email), and queues the mail in the
system mail outbox (inbox/mail.py) in the same transaction. Mail is batched: at most one mail per user
and conversation per ``mail_window``; notices that arrive within the window wait (``email_status``
pending) and go out together in one mail from ``flush_due`` once it has passed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t
from inbox.caches import Caches
from inbox.db import Database
from inbox.i18n import N_, translator, user_language
from inbox.mail import queue_mail
from inbox.model import MessageKind

KINDS = (
    "new_conversation",
    "assigned",
    "new_message",
    "mention",
    "handoff",
    "ticket_assigned",
    "quota_tier",
)
# Until a user chooses: in the page for what is about them, nothing for every new conversation, no mail.
DEFAULTS: dict[str, dict[str, bool]] = {
    kind: {"in_app": kind != "new_conversation", "email": False} for kind in KINDS
}
PENDING = "pending"
SENT = "sent"
MENTION = re.compile(r"(?<![\w@.])@([\w][\w.\-]{0,63})")


def preferences(stored: dict[str, Any] | None) -> dict[str, dict[str, bool]]:
    """Every kind with both switches: the user's choices over the defaults."""
    merged = {kind: dict(values) for kind, values in DEFAULTS.items()}
    for kind, values in (stored or {}).items():
        if kind in merged and isinstance(values, dict):
            merged[kind].update({k: bool(v) for k, v in values.items() if k in ("in_app", "email")})
    return merged


def handle_of(user: t.User) -> set[str]:
    """The names ``@name`` may use for a user: the email's local part, the name without spaces."""
    return {user.email.split("@")[0].lower(), re.sub(r"\s+", "", user.name).lower()}


async def mentioned_users(session: AsyncSession, account_id: int, text: str | None) -> list[t.User]:
    """The account's users a note's ``@name`` words name (words naming nobody are plain text)."""
    handles = {m.lower().rstrip(".-") for m in MENTION.findall(text or "")}
    if not handles:
        return []
    users = await session.scalars(select(t.User).where(t.User.account_id == account_id).order_by(t.User.id))
    return [u for u in users if handle_of(u) & handles]


@dataclass(frozen=True)
class Notice:
    """``title`` is an English message (``N_``) with ``params``: it is kept in its reader's language."""

    user_id: int
    kind: str
    title: str
    body: str = ""
    conversation_id: int | None = None
    ticket_id: int | None = None
    params: Mapping[str, str] = field(default_factory=dict)


class Notifier:
    """The ``Database.on_events`` hook that turns events into notifications and notification mail."""

    def __init__(self, public_url: str, mail_window: timedelta, caches: Caches | None = None) -> None:
        self._public_url = public_url.rstrip("/")
        self.mail_window = mail_window
        # Inbox members and readers' preferences and languages, read once per process (a broadcast
        # opens a conversation per recipient, each notifying the inbox's members).
        self._caches = caches

    async def __call__(self, session: AsyncSession, events: Sequence[t.Event]) -> None:
        for event in events:
            notices = await self._notices(session, event)
            if notices:
                await self._keep(session, event, notices)

    # -- who hears about what ------------------------------------------------------------------------

    async def _notices(self, session: AsyncSession, event: t.Event) -> list[Notice]:
        data = event.payload or {}
        kind = event.type
        if kind in ("conversation.created", "conversation.updated", "conversation.handoff"):
            return await self._conversation_notices(session, event, data)
        if kind == "message.created":
            return await self._message_notices(session, event, data.get("message") or {})
        if kind in ("ticket.created", "ticket.updated"):
            ticket = data.get("ticket") or {}
            for change in data.get("changes") or []:
                owner = change.get("new")
                if (
                    change.get("field") == "owner_id"
                    and isinstance(owner, int)
                    and owner != data.get("actor_id")
                ):
                    return [
                        Notice(
                            owner,
                            "ticket_assigned",
                            N_("Ticket #{id} assigned to you: {title}"),
                            ticket_id=ticket.get("id"),
                            params={"id": str(ticket.get("id")), "title": str(ticket.get("title") or "")},
                        )
                    ]
            return []
        if kind == "quota.updated":
            return await self._quota_notices(session, event, data)
        return []

    async def _conversation_notices(
        self, session: AsyncSession, event: t.Event, data: dict[str, Any]
    ) -> list[Notice]:
        conversation_id = event.conversation_id
        if conversation_id is None:
            return []
        conversation = await session.get(t.Conversation, conversation_id)
        if conversation is None:
            return []
        notices: list[Notice] = []
        number = {"id": str(conversation.id)}
        if event.type == "conversation.created":
            members = await self._members(session, conversation.inbox_id)
            notices += [
                Notice(
                    u, "new_conversation", N_("New conversation #{id}"), "", conversation.id, params=number
                )
                for u in members
            ]
        # The assignee as of this transaction's end (a hand-off's assignment is in the same one).
        assignee = conversation.assignee_id
        seen = await session.get(t.NotifiedAssignee, conversation.id)
        previous = seen.assignee_id if seen is not None else None
        if seen is None:
            session.add(t.NotifiedAssignee(conversation_id=conversation.id, assignee_id=assignee))
            await session.flush()  # the next event of this transaction finds it
        else:
            seen.assignee_id = assignee
        if assignee is not None and assignee != previous and event.type != "conversation.handoff":
            title = N_("You were assigned conversation #{id}")
            notices.append(Notice(assignee, "assigned", title, "", conversation.id, params=number))
        if event.type == "conversation.handoff":
            reason = str(data.get("reason") or "")
            title = N_("A bot handed conversation #{id} to a person")
            if assignee is not None:
                return [*notices, Notice(assignee, "handoff", title, reason, conversation.id, params=number)]
            for user_id in await self._online_team(session, conversation):
                notices.append(Notice(user_id, "handoff", title, reason, conversation.id, params=number))
        return notices

    async def _members(self, session: AsyncSession, inbox_id: int) -> tuple[int, ...]:
        async def load() -> tuple[int, ...]:
            rows = await session.scalars(
                select(t.InboxMember.user_id).where(t.InboxMember.inbox_id == inbox_id)
            )
            return tuple(rows)

        if self._caches is None:
            return await load()
        return await self._caches.get(session, ("inbox_members", inbox_id), ("inbox_members",), load)

    async def _readers(
        self, session: AsyncSession, user_ids: frozenset[int]
    ) -> tuple[tuple[int, dict[str, dict[str, bool]], str], ...]:
        """(user id, notification preferences, language) of each user who still exists."""

        async def load() -> tuple[tuple[int, dict[str, dict[str, bool]], str], ...]:
            stored = await session.execute(
                select(t.NotificationPreference.user_id, t.NotificationPreference.prefs).where(
                    t.NotificationPreference.user_id.in_(user_ids)
                )
            )
            prefs = {user_id: preferences(p) for user_id, p in stored}
            users = await session.scalars(select(t.User).where(t.User.id.in_(user_ids)))
            return tuple([(u.id, prefs.get(u.id, DEFAULTS), await user_language(session, u)) for u in users])

        if self._caches is None:
            return await load()
        tables = ("notification_preferences", "users", "accounts")
        return await self._caches.get(session, ("notification_readers", user_ids), tables, load)

    async def _online_team(self, session: AsyncSession, conversation: t.Conversation) -> list[int]:
        """The online members of the conversation's team, else of its inbox."""
        if conversation.team_id is not None:
            stmt = (
                select(t.User.id)
                .join(t.TeamMember, t.TeamMember.user_id == t.User.id)
                .where(t.TeamMember.team_id == conversation.team_id)
            )
        else:
            stmt = (
                select(t.User.id)
                .join(t.InboxMember, t.InboxMember.user_id == t.User.id)
                .where(t.InboxMember.inbox_id == conversation.inbox_id)
            )
        return list(await session.scalars(stmt.where(t.User.availability == "online").order_by(t.User.id)))

    async def _message_notices(
        self, session: AsyncSession, event: t.Event, message: dict[str, Any]
    ) -> list[Notice]:
        if event.conversation_id is None:
            return []
        kind = message.get("kind")
        text = str(message.get("text") or "")
        if kind == MessageKind.INCOMING:
            conversation = await session.get(t.Conversation, event.conversation_id)
            if conversation is None or conversation.assignee_id is None:
                return []
            return [
                Notice(
                    conversation.assignee_id,
                    "new_message",
                    N_("New message in conversation #{id}"),
                    text[:300],
                    conversation.id,
                    params={"id": str(conversation.id)},
                )
            ]
        if kind == MessageKind.NOTE:
            author = message.get("author_id")
            users = await mentioned_users(session, event.account_id, text)
            return [
                Notice(
                    u.id,
                    "mention",
                    N_("You were mentioned in conversation #{id}"),
                    text[:300],
                    event.conversation_id,
                    params={"id": str(event.conversation_id)},
                )
                for u in users
                if u.id != author
            ]
        return []

    async def _quota_notices(
        self, session: AsyncSession, event: t.Event, data: dict[str, Any]
    ) -> list[Notice]:
        tier = data.get("tier")
        if not isinstance(tier, int):
            return []
        reached_now = await session.scalar(
            select(t.QuotaAlert.tier).where(
                t.QuotaAlert.account_id == event.account_id,
                t.QuotaAlert.period == data.get("period"),
                t.QuotaAlert.tier == tier,
                t.QuotaAlert.created_at == event.created_at,
            )
        )
        if reached_now is None:
            return []
        admins = await session.scalars(
            select(t.User.id).where(
                t.User.account_id == event.account_id, t.User.role.in_(("super_admin", "billing_admin"))
            )
        )
        title = N_("{percent} of this month's conversations used")  # a field: "% o" reads as %-format
        return [Notice(u, "quota_tier", title, params={"percent": f"{tier} %"}) for u in admins]

    # -- keeping them ---------------------------------------------------------------------------------

    async def _keep(self, session: AsyncSession, event: t.Event, notices: list[Notice]) -> None:
        unique: dict[tuple[int, str, int | None, int | None], Notice] = {}
        for notice in notices:
            unique.setdefault((notice.user_id, notice.kind, notice.conversation_id, notice.ticket_id), notice)
        readers = await self._readers(session, frozenset(n.user_id for n in unique.values()))
        prefs = {user_id: p for user_id, p, _ in readers}
        languages = {user_id: language for user_id, _, language in readers}
        mail_due: list[t.Notification] = []
        for notice in unique.values():
            wanted = prefs.get(notice.user_id, DEFAULTS)[notice.kind]
            if not (wanted["in_app"] or wanted["email"]):
                continue
            row = t.Notification(
                account_id=event.account_id,
                user_id=notice.user_id,
                kind=notice.kind,
                event_id=event.id,
                conversation_id=notice.conversation_id,
                ticket_id=notice.ticket_id,
                title=translator(languages.get(notice.user_id)).gettext(notice.title, **notice.params)[:300],
                body=notice.body,
                in_app=wanted["in_app"],
                email_status=PENDING if wanted["email"] else None,
                created_at=event.created_at,
            )
            session.add(row)
            if wanted["email"]:
                mail_due.append(row)
        if mail_due:
            await session.flush()
            for row in mail_due:
                await self._mail_if_window_allows(
                    session, row.user_id, row.conversation_id or 0, event.created_at
                )

    async def _mail_if_window_allows(
        self, session: AsyncSession, user_id: int, key: int, now: datetime
    ) -> bool:
        """Mail the pending notices about ``key`` unless the user was mailed about it within the window."""
        window = await session.get(t.NotificationMailWindow, (user_id, key))
        if window is not None and window.last_mailed_at > now - self.mail_window:
            return False
        conversation = (
            t.Notification.conversation_id == key if key else t.Notification.conversation_id.is_(None)
        )
        pending = list(
            await session.scalars(
                select(t.Notification)
                .where(
                    t.Notification.user_id == user_id, t.Notification.email_status == PENDING, conversation
                )
                .order_by(t.Notification.id)
                .with_for_update()  # two gateways' timers: one of them mails these
            )
        )
        user = await session.get(t.User, user_id)
        if not pending or user is None:
            return False
        tr = translator(await user_language(session, user))
        subject = (
            pending[0].title
            if len(pending) == 1
            else tr.ngettext(
                "{count} notification: {title}",
                "{count} notifications: {title}",
                len(pending),
                title=pending[-1].title,
            )
        )
        lines = [f"- {n.title}" + (f"\n  {n.body}" if n.body else "") for n in pending]
        link = f"{self._public_url}/#/conversations/{key}" if key else f"{self._public_url}/"
        queue_mail(
            session,
            account_id=user.account_id,
            to=[user.email],
            subject=subject[:200],
            body="\n".join(
                [
                    *lines,
                    "",
                    tr.gettext("Open: {link}", link=link),
                    "",
                    tr.gettext("Change what you get: your notification settings."),
                ]
            ),
            now=now,
        )
        await session.execute(
            update(t.Notification)
            .where(t.Notification.id.in_([n.id for n in pending]))
            .values(email_status=SENT)
        )
        if window is None:
            session.add(t.NotificationMailWindow(user_id=user_id, conversation_key=key, last_mailed_at=now))
        else:
            window.last_mailed_at = now
        return True

    async def flush_due(self, db: Database, now: datetime) -> int:
        """Mail the notices held back by the window once it has passed; returns how many mails."""
        async with db.read() as session:
            keys = set(
                (
                    await session.execute(
                        select(t.Notification.user_id, t.Notification.conversation_id).where(
                            t.Notification.email_status == PENDING
                        )
                    )
                ).tuples()
            )
        mailed = 0
        for user_id, conversation_id in sorted(keys, key=lambda k: (k[0], k[1] or 0)):
            async with db.write() as session:
                mailed += await self._mail_if_window_allows(session, user_id, conversation_id or 0, now)
        return mailed
