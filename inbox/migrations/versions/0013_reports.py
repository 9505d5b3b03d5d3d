"""reports: the facts the reports read, written as the events happen (reports/facts.py)

Existing installations start with empty facts: ``switchboard reports rebuild`` replays the event log.

Revision ID: 0013_reports
Revises: 0012_tickets
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_reports"
down_revision: str | None = "0012_tickets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "report_conversations",
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_kind", sa.String(length=16), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=True),
        sa.Column("assignee_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_report_conversations")),
    )
    op.create_index(
        op.f("ix_report_conversations_account_id"), "report_conversations", ["account_id"], unique=False
    )
    op.create_table(
        "report_facts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("inbox_id", sa.BigInteger(), nullable=True),
        sa.Column("channel_kind", sa.String(length=16), nullable=True),
        sa.Column("team_id", sa.BigInteger(), nullable=True),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("flow_id", sa.BigInteger(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=True),
        sa.Column("seconds", sa.Integer(), nullable=True),
        sa.Column("business_seconds", sa.Integer(), nullable=True),
        sa.Column("void", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_facts")),
    )
    op.create_index("ix_report_facts_account_kind_day", "report_facts", ["account_id", "kind", "day"])
    op.create_index("ix_report_facts_conversation_id", "report_facts", ["conversation_id"])
    op.create_index("ix_report_facts_message_id", "report_facts", ["message_id"])


def downgrade() -> None:
    op.drop_table("report_facts")
    op.drop_table("report_conversations")
