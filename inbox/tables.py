"""SQLAlchemy tables. The same schema runs on SQLite and PostgreSQL; Alembic migrations follow it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        # SQLite keeps text; naive UTC text sorts and compares correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Server texts (alert mails, confirmations) and the default of its users' pages: inbox.i18n.
    language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    included_conversations: Mapped[int] = mapped_column(Integer, default=1000)
    # The plan's contact limit (None: none). Contacts past it, by capture order, receive no
    # business-initiated sends (inbox.contact_limit).
    contact_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    availability: Mapped[str] = mapped_column(String(16), default="offline")
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: the account's
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex; the token is never stored
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TeamMember(Base):
    __tablename__ = "team_members"
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class InboxRow(Base):
    __tablename__ = "inboxes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboxMember(Base):
    __tablename__ = "inbox_members"
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class Channel(Base):
    __tablename__ = "channels"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    # Channel settings; keys ending in _secret/_token/password are withheld from non-admins.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True, index=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # Created by an event from an integration (POST /events), not by a message: the AUTO label.
    auto_captured: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContactIdentity(Base):
    """(account, channel kind, address) → contact. Addresses are normalized (inbox.identities)."""

    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("account_id", "kind", "address"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_inbox_status_activity", "inbox_id", "status", "last_activity_at", "id"),
        Index("ix_conversations_inbox_activity", "inbox_id", "last_activity_at", "id"),  # 0010_query_speed
        Index("ix_conversations_channel_thread", "channel_id", "thread_key"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    thread_key: Mapped[str] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320))  # where replies go: the contact, or a group chat
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)
    priority: Mapped[str] = mapped_column(String(16), default="none")
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConversationLabel(Base):
    __tablename__ = "conversation_labels"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # Dedupe of inbound deliveries and lookup of provider status callbacks.
        UniqueConstraint("channel_id", "provider_message_id", name="uq_messages_channel_provider_id"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        Index("ix_messages_status_next_attempt", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    kind: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str] = mapped_column(String(16), default="contact")  # contact, agent, bot, system, api
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_type: Mapped[str] = mapped_column(String(32), default="text")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    template: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OrphanStatus(Base):
    """A provider status that arrived before we stored the provider id of its message."""

    __tablename__ = "orphan_statuses"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    provider_message_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_title: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(Base):
    """The live-stream log. Ids increase monotonically; ``?after=`` resumes from here."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    type: Mapped[str] = mapped_column(String(64))
    inbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Setting(Base):
    """Small per-installation key/value state (e.g. demo seeded)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)


# -- routing (routing/) ----------------------------------------------------------------------------


class RoutingRule(Base):
    """One ordered rule of an account: conditions (all/any) and actions, as validated JSON."""

    __tablename__ = "routing_rules"
    __table_args__ = (Index("ix_routing_rules_account_position", "account_id", "position"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    match: Mapped[str] = mapped_column(String(8), default="all")  # all | any
    triggers: Mapped[list[str]] = mapped_column(JSON, default=list)
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    stop: Mapped[bool] = mapped_column(Boolean, default=False)  # later rules are skipped once this fired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RuleFiring(Base):
    """Audit: a rule fired on a conversation and took these actions (rule name kept if it is deleted)."""

    __tablename__ = "rule_firings"
    __table_args__ = (Index("ix_rule_firings_conversation_rule", "conversation_id", "rule_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    rule_id: Mapped[int] = mapped_column(BigInteger, index=True)
    rule_name: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    trigger: Mapped[str] = mapped_column(String(32))
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AssignmentPolicy(Base):
    """Automatic assignment for one inbox or one team: strategy, per-agent capacity, release rule."""

    __tablename__ = "assignment_policies"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    inbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=True, unique=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), nullable=True, unique=True
    )
    strategy: Mapped[str] = mapped_column(String(16), default="round_robin")  # round_robin | least_busy
    capacity: Mapped[int] = mapped_column(Integer, default=10)
    agent_capacity: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # user id (str) → capacity
    release_on_offline: Mapped[bool] = mapped_column(Boolean, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cursor_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # round robin position
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AssignmentWait(Base):
    """A conversation waiting for an agent with free capacity, first come first served."""

    __tablename__ = "assignment_queue"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("assignment_policies.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- bots (bots/) ----------------------------------------------------------------------------------


class BotFlow(Base):
    """A declarative bot flow (kind ``flow``) or a FAQ bot (kind ``faq``); definition is validated JSON."""

    __tablename__ = "bot_flows"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="flow")
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BotRun(Base):
    """One bot conversation, durable so a restart continues where it stopped."""

    __tablename__ = "bot_runs"
    __table_args__ = (Index("ix_bot_runs_conversation_status", "conversation_id", "status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    flow_id: Mapped[int] = mapped_column(ForeignKey("bot_flows.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), index=True)  # active | completed | handed_off | stopped
    state: Mapped[str] = mapped_column(String(100))
    entered: Mapped[bool] = mapped_column(Boolean, default=False)  # the state's prompt was sent
    retries: Mapped[int] = mapped_column(Integer, default=0)
    last_message_id: Mapped[int] = mapped_column(BigInteger, default=0)  # incoming messages seen up to here
    steps: Mapped[int] = mapped_column(Integer, default=0)
    refusals: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    outcome: Mapped[str | None] = mapped_column(String(200), nullable=True)  # why it ended
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# -- the web inbox (issue 9): browser sessions, per-agent read markers, canned responses --------------


class WebSession(Base):
    """A signed-in browser. Only the digest of the cookie value is stored; the CSRF token goes with it."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConversationRead(Base):
    """How far one user has read a conversation: incoming messages with a higher id are unread."""

    __tablename__ = "conversation_reads"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    last_read_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CannedResponse(Base):
    """A saved reply agents insert with ``/short_code`` in the composer."""

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("account_id", "short_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    short_code: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


__all__ = [
    "Account",
    "ApiToken",
    "AssignmentPolicy",
    "AssignmentWait",
    "Base",
    "BotFlow",
    "BotRun",
    "CannedResponse",
    "Channel",
    "Contact",
    "ContactIdentity",
    "Conversation",
    "ConversationLabel",
    "ConversationRead",
    "Event",
    "InboxMember",
    "InboxRow",
    "Message",
    "OrphanStatus",
    "RoutingRule",
    "RuleFiring",
    "Setting",
    "Team",
    "TeamMember",
    "User",
    "WebSession",
]


# -- policies: consent, templates, billable conversations, quota, system mail (DESIGN.md §3) ----------


class ConsentState(Base):
    """The current consent of one contact on one channel; absent means ``unknown``."""

    __tablename__ = "consent_states"
    __table_args__ = (UniqueConstraint("contact_id", "channel_id", name="uq_consent_states_contact_channel"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsentChange(Base):
    """One row per consent change: who or what changed it, on what evidence, when."""

    __tablename__ = "consent_changes"
    __table_args__ = (Index("ix_consent_changes_contact_channel", "contact_id", "channel_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    previous: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # keyword, agent, api, import
    evidence: Mapped[str | None] = mapped_column(String(255), nullable=True)  # message:<id>, user:<id>
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MessageTemplate(Base):
    """A pre-approved message for sends outside the service window (WhatsApp message templates)."""

    __tablename__ = "message_templates"
    __table_args__ = (
        UniqueConstraint("channel_id", "name", "language", name="uq_message_templates_channel_name_lang"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))  # marketing, utility, authentication
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # approved, pending, rejected, paused
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BillableConversation(Base):
    """A 24-hour billable conversation on a metered channel, counted once in the period it opened."""

    __tablename__ = "billable_conversations"
    __table_args__ = (
        Index("ix_billable_conversations_channel_contact", "channel_id", "contact_id", "expires_at"),
        Index("ix_billable_conversations_account_period", "account_id", "period", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    first_message_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM (UTC)
    category: Mapped[str] = mapped_column(String(32))  # user_initiated, business_initiated
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class QuotaUsage(Base):
    """Conversations counted and packs held by one account in one calendar month (UTC).

    The row is the lock: on PostgreSQL every count takes ``SELECT ... FOR UPDATE`` on it.
    """

    __tablename__ = "quota_usage"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
    packs: Mapped[int] = mapped_column(Integer, default=0)
    cancelled_packs: Mapped[int] = mapped_column(Integer, default=0)  # held to the end, then not renewed
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class QuotaAlert(Base):
    """A tier reached in a period. The primary key makes each tier fire exactly once."""

    __tablename__ = "quota_alerts"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    tier: Mapped[int] = mapped_column(Integer, primary_key=True)
    used: Mapped[int] = mapped_column(Integer)
    limit: Mapped[int] = mapped_column(Integer)
    mail_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutgoingMail(Base):
    """System mail (quota alerts) waiting for, or done with, the SMTP relay. Retried, never dropped."""

    __tablename__ = "outgoing_mail"
    __table_args__ = (Index("ix_outgoing_mail_status_next", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(998))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


__all__ += [
    "BillableConversation",
    "ConsentChange",
    "ConsentState",
    "MessageTemplate",
    "OutgoingMail",
    "QuotaAlert",
    "QuotaUsage",
]


# -- reports (reports/): facts written as the events happen, read by GET /reports/* (issue 18) -------


class ReportConversation(Base):
    """A conversation as the reports follow it: its place and owner, and what it waits for."""

    __tablename__ = "report_conversations"
    conversation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, index=True)
    inbox_id: Mapped[int] = mapped_column(BigInteger)
    channel_id: Mapped[int] = mapped_column(BigInteger)
    channel_kind: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    assignee_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The oldest contact message nobody has answered yet (reset to the hand-off time when a bot lets go).
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    responded: Mapped[bool] = mapped_column(Boolean, default=False)  # the first response is recorded
    # Its labels as the roll-ups hold them (a label counts for the whole conversation).
    labels: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")


class ReportFact(Base):
    """One thing that happened, on the local day of the account's time zone, with its dimensions.

    ``kind``: opened, incoming, outgoing, refused, first_response, next_response, resolved, reopened,
    handoff, bot_run, bot_resolved, billable. ``seconds``/``business_seconds`` for the timed ones;
    ``void`` marks a resolution a reopen took back (and a billable conversation the quota released).
    """

    __tablename__ = "report_facts"
    __table_args__ = (
        Index("ix_report_facts_account_kind_day", "account_id", "kind", "day"),
        Index("ix_report_facts_conversation_id", "conversation_id"),
        Index("ix_report_facts_message_id", "message_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    inbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    channel_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    team_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    agent_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    flow_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    origin: Mapped[str | None] = mapped_column(String(16), nullable=True)
    seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    business_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    void: Mapped[bool] = mapped_column(Boolean, default=False)


class ReportRollup(Base):
    """The facts summed per local day and dimension: what every report reads (``reports/rollup.py``).

    One row per key; ``label`` ``""`` holds every fact, a label's rows hold its conversations' facts
    again. Absent dimensions are 0 / ``""`` (a unique key treats NULLs as distinct). A timed kind has one
    row per histogram ``bucket`` of its seconds (``measure`` 0) and of its business seconds (1);
    the other kinds have bucket 0, measure 0. ``n`` facts, ``total`` their seconds.
    """

    __tablename__ = "report_rollups"
    __table_args__ = {"sqlite_with_rowid": False}
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    measure: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    team_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    agent_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    flow_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    origin: Mapped[str] = mapped_column(String(16), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)


class ReportAgentDay(Base):
    """An agent replied in a conversation on a local day (the first reply of that day gives its place).

    ``previous`` is the agent's last earlier day in that conversation: the conversations an agent replied
    in over a period are the rows of the period whose ``previous`` is before it (a count, not a distinct).
    ``label`` as in ``report_rollups``.
    """

    __tablename__ = "report_agent_days"
    __table_args__ = (
        Index("ix_report_agent_days_conversation_id", "conversation_id", "agent_id", "day"),
        {"sqlite_with_rowid": False},
    )
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    agent_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    previous: Mapped[date | None] = mapped_column(Date, nullable=True)
    inbox_id: Mapped[int] = mapped_column(BigInteger)
    team_id: Mapped[int] = mapped_column(BigInteger)
    channel_kind: Mapped[str] = mapped_column(String(16))


__all__ += ["ReportAgentDay", "ReportConversation", "ReportFact", "ReportRollup"]
# -- tickets (inbox/tickets.py) ----------------------------------------------------------------------


class Ticket(Base):
    """A customer problem followed past the chat: a stage of the account's pipeline, an owner, links."""

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_inbox_stage", "inbox_id", "stage", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id"))  # who may see it: its members
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    stage: Mapped[str] = mapped_column(String(64))  # a key of the account's pipeline (inbox.tickets)
    priority: Mapped[str] = mapped_column(String(16), default="none")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), nullable=True, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TicketConversation(Base):
    __tablename__ = "ticket_conversations"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TicketChange(Base):
    """One line of a ticket's history: who changed which field from what to what."""

    __tablename__ = "ticket_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    field: Mapped[str] = mapped_column(String(32))
    old: Mapped[Any] = mapped_column(JSON, nullable=True)
    new: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- notifications (inbox/notifications.py) ----------------------------------------------------------


class NotificationPreference(Base):
    """A user's choices per notification kind: ``{kind: {"in_app": bool, "email": bool}}``."""

    __tablename__ = "notification_preferences"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    prefs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Notification(Base):
    """One notice for one user, derived from an event in the event's own transaction."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_id_id", "user_id", "id"),
        Index("ix_notifications_email_status", "email_status", "user_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ticket_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    in_app: Mapped[bool] = mapped_column(Boolean, default=True)
    email_status: Mapped[str | None] = mapped_column(String(16), nullable=True)  # pending, sent
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotificationMailWindow(Base):
    """When a user was last mailed about a conversation (0: notices without one): the batching window."""

    __tablename__ = "notification_mail_windows"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    conversation_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_mailed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotifiedAssignee(Base):
    """The assignee a conversation's notices last saw, so an assignment is told once, whoever made it."""

    __tablename__ = "notified_assignees"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    assignee_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


# -- agent profiles (inbox/profiles.py) --------------------------------------------------------------


class AgentProfile(Base):
    """What visitors see of an agent: display name, title, meeting link, avatar (a media key)."""

    __tablename__ = "agent_profiles"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    title: Mapped[str | None] = mapped_column(String(100), nullable=True)
    meeting_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    avatar_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


__all__ += [
    "AgentProfile",
    "Notification",
    "NotificationMailWindow",
    "NotificationPreference",
    "NotifiedAssignee",
    "Ticket",
    "TicketChange",
    "TicketConversation",
]


# -- contact tags and indexed attributes (inbox/tags.py, inbox/attributes.py) -------------------------


class ContactTag(Base):
    """One tag on one contact. ``auto`` tags come from rules (product events) and only rules remove them.

    (account_id, tag, contact_id) answers "contacts with tag X" and has-any/has-all/none filters.
    """

    __tablename__ = "contact_tags"
    __table_args__ = (Index("ix_contact_tags_account_tag", "account_id", "tag", "contact_id"),)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    source: Mapped[str] = mapped_column(String(8))  # auto | manual
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContactAttribute(Base):
    """A contact's scalar attributes, one row per key, for filters (Contact.attributes stays the record).

    Text in ``text_value`` (numbers and booleans too, as text); numbers also in ``number_value``.
    """

    __tablename__ = "contact_attributes"
    __table_args__ = (
        Index("ix_contact_attributes_text", "account_id", "key", "text_value"),
        Index("ix_contact_attributes_number", "account_id", "key", "number_value"),
    )
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    text_value: Mapped[str | None] = mapped_column(String(500), nullable=True)
    number_value: Mapped[float | None] = mapped_column(Float, nullable=True)


class ContactAttributeItem(Base):
    """One item of a contact's list attribute (``badges``), for "the list contains X" filters."""

    __tablename__ = "contact_attribute_items"
    __table_args__ = (Index("ix_contact_attribute_items_item", "account_id", "key", "item"),)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    item: Mapped[str] = mapped_column(String(500), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))


__all__ += ["ContactAttribute", "ContactAttributeItem", "ContactTag"]


# -- audiences and broadcast lists (inbox/audiences.py, inbox/broadcasts.py) --------------------------


class Audience(Base):
    """A saved filter over an account's contacts (inbox.audiences.AudienceFilter as JSON)."""

    __tablename__ = "audiences"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    filter: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Broadcast(Base):
    """One message to many contacts, each in its own conversation; sent in the background, resumable.

    ``status``: expanding (recipients not yet listed), sending, done, canceled. ``audience`` is the
    filter as it was when the broadcast was created (a saved audience may change later). With
    ``allow_replies`` false, its conversations carry ``meta["replies_disabled"]`` (inbox.broadcasts).
    """

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_account_id_id", "account_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    template: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # inbox.model.Attachment dumps (uploads), sent with the text to every recipient.
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")
    audience: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    audience_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    allow_replies: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16))
    # Recipients listed, and how many of them the runner has handled so far (kept with each batch).
    total: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    canceled: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BroadcastRecipient(Base):
    """One contact of a broadcast: ``pending`` until its message is stored, in the same transaction.

    ``outcome``: pending, queued (the gate accepted it; the message's status tells the rest), failed
    (refused by the gate, ``reason``), canceled (the broadcast was canceled before its turn).
    """

    __tablename__ = "broadcast_recipients"
    __table_args__ = (
        Index("ix_broadcast_recipients_outcome", "broadcast_id", "outcome", "contact_id"),
        Index("ix_broadcast_recipients_message_id", "message_id"),
    )
    broadcast_id: Mapped[int] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


__all__ += ["Audience", "Broadcast", "BroadcastRecipient"]


# -- replies with attachments and contact merges (issue 22) ------------------------------------------


class Upload(Base):
    """A file an agent uploaded for a reply: its type sniffed from its bytes, stored in the media store,
    then referenced by id from ``POST /conversations/{id}/messages``."""

    __tablename__ = "uploads"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    media_key: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContactMerge(Base):
    """The audit entry of one merge: the contact that went away, as it was, and every conflict resolved."""

    __tablename__ = "contact_merges"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    into_contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    from_contact_id: Mapped[int] = mapped_column(BigInteger)  # gone after the merge: no foreign key
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    # The merged-away contact's row, identities and every row that could not move (nothing is lost).
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    # [{"field": "attributes.plan", "kept": ..., "dropped": ..., "from": "into"|"from"}]
    conflicts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


__all__ += ["ContactMerge", "Upload"]


# -- outgoing webhooks: subscriptions and their deliveries (inbox/webhooks.py) ---------------------------


class WebhookSubscription(Base):
    """An integrator's URL and the event types it gets. The row is also the sender's lease and schedule:
    deliveries of one subscription go out one at a time, in order, and wait together behind a retry."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    inbox_ids: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)  # None: every inbox
    secret: Mapped[str] = mapped_column(String(255))  # the HMAC key; never shown after creation
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event for one subscription: pending until the receiver answers 2xx (delivered) or it gives up
    (failed). Written in the transaction of its event, so ids follow event order."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_subscription_status", "subscription_id", "status", "id"),
        Index("ix_webhook_deliveries_status", "status", "subscription_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)  # X-Switchboard-Delivery
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    event_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # None: a test event
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_response: Mapped[str | None] = mapped_column(Text, nullable=True)  # an excerpt of the body
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookAttempt(Base):
    """One try of a delivery: what the receiver answered (or why nobody did), for the delivery log."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[str | None] = mapped_column(Text, nullable=True)  # an excerpt of the body
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


__all__ += ["WebhookAttempt", "WebhookDelivery", "WebhookSubscription"]


# -- contact events, products, segmentations (inbox/contact_events.py, inbox/segmentations.py) -------


class EventSource(Base):
    """An integration that posts contact events signed with its own secret (HMAC-SHA256 of the body)."""

    __tablename__ = "event_sources"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(String(128))  # needed to check signatures, so kept; never listed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Product(Base):
    """A product events happen to, known by the integration's id; its kind decides the event types."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("account_id", "external_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # inbox.products.ProductKind
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContactEvent(Base):
    """Something a contact did (a purchase, a refund, a lesson), as an integration reported it once."""

    __tablename__ = "contact_events"
    __table_args__ = (
        UniqueConstraint("account_id", "external_id"),
        Index("ix_contact_events_contact", "contact_id", "occurred_at", "id"),
        Index("ix_contact_events_product", "product_id", "occurred_at", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    external_id: Mapped[str] = mapped_column(String(200))  # the integration's event id (idempotency)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), nullable=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("event_sources.id"), nullable=True)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the event changed: [{"tag", "action", "rule": "standard" | segmentation id}].
    effects: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Segmentation(Base):
    """A producer's own rule: on an event type (of one product or any), if a condition holds, tag."""

    __tablename__ = "segmentations"
    __table_args__ = (Index("ix_segmentations_account_event", "account_id", "event_type", "active"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), nullable=True)
    event_type: Mapped[str] = mapped_column(String(64))
    condition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # inbox.conditions.Condition
    action: Mapped[str] = mapped_column(String(16))  # add_tag | remove_tag
    tag: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


__all__ += ["ContactEvent", "EventSource", "Product", "Segmentation"]


# -- satisfaction surveys (inbox/csat.py) ------------------------------------------------------------


class CsatSetting(Base):
    """An inbox's survey after resolution: on or off, delay, question, scale, follow-up, template."""

    __tablename__ = "csat_settings"
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    delay_seconds: Mapped[int] = mapped_column(Integer, default=0)
    question: Mapped[str | None] = mapped_column(Text, nullable=True)  # None: the default, translated
    scale: Mapped[str] = mapped_column(String(16), default="numbers")  # numbers (1-5) or emoji
    follow_up: Mapped[bool] = mapped_column(Boolean, default=False)  # ask for a comment after the rating
    template_name: Mapped[str | None] = mapped_column(String(512), nullable=True)  # outside the window
    template_language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CsatSurvey(Base):
    """One survey of one resolved conversation: scheduled, then sent or not sent (with the reason),
    then answered with a rating 1-5 (and perhaps a comment). Credited to the agent who had it."""

    __tablename__ = "csat_surveys"
    __table_args__ = (
        Index("ix_csat_surveys_status_send_at", "status", "send_at"),
        Index("ix_csat_surveys_account_answered", "account_id", "answered_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    inbox_id: Mapped[int] = mapped_column(BigInteger)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # scheduled, sent, not_sent, awaiting_comment, answered
    scale: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)  # why not sent
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


__all__ += ["CsatSetting", "CsatSurvey"]


# -- automations: triggers, steps, runs and each step's outcome (inbox/automations.py, automation_runs.py) --


class Automation(Base):
    """A trigger and the steps a run takes for each contact it fires for; counters for the list page."""

    __tablename__ = "automations"
    __table_args__ = (Index("ix_automations_trigger", "account_id", "trigger_type", "trigger_key", "active"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)  # inbox.automations.Trigger
    # What the trigger listens for, indexed: the tag, the event type, the folded keyword; None: no_reply.
    trigger_type: Mapped[str] = mapped_column(String(32))
    trigger_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [inbox.automations.Step]
    runs: Mapped[int] = mapped_column(Integer, default=0)  # runs started
    errors: Mapped[int] = mapped_column(Integer, default=0)  # steps refused by the gate or failed
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AutomationRun(Base):
    """One contact going through an automation. ``run_at`` is the durable timer: the sweeper takes the
    next step of every active run that is due. ``armed``: a no-reply trigger waiting for its hours."""

    __tablename__ = "automation_runs"
    __table_args__ = (
        Index("ix_automation_runs_due", "status", "run_at"),
        Index("ix_automation_runs_automation", "automation_id", "id"),
        Index("ix_automation_runs_contact", "contact_id", "automation_id", "status"),
        Index("ix_automation_runs_conversation", "conversation_id", "status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    automation_id: Mapped[int] = mapped_column(ForeignKey("automations.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(16))  # armed, active, done, canceled
    position: Mapped[int] = mapped_column(Integer, default=0)  # the next step to take
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    trigger_event_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the trigger's data (data.<name>)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AutomationRunStep(Base):
    """What one step did for one run: done, waiting, stopped, skipped, refused (with the gate's reason)."""

    __tablename__ = "automation_run_steps"
    __table_args__ = (Index("ix_automation_run_steps_run", "run_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("automation_runs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


__all__ += ["Automation", "AutomationRun", "AutomationRunStep"]
