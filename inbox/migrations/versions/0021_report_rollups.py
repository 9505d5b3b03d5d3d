"""report roll-ups: facts summed per local day and dimension, and agents' reply days (reports/rollup.py)

The roll-ups start empty: run ``switchboard reports rebuild`` once after upgrading (it replays the
event log into the facts and their roll-ups).

Revision ID: 0021_report_rollups
Revises: 0020_csat
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_report_rollups"
down_revision: str | None = "0020_csat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUP_KEY = [
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
]


def upgrade() -> None:
    op.add_column("report_conversations", sa.Column("labels", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "report_rollups",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("measure", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_kind", sa.String(length=16), nullable=False),
        sa.Column("flow_id", sa.BigInteger(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*ROLLUP_KEY, name=op.f("pk_report_rollups")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "report_agent_days",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("previous", sa.Date(), nullable=True),
        sa.Column("inbox_id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_kind", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "label", "day", "agent_id", "conversation_id", name=op.f("pk_report_agent_days")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_report_agent_days_conversation_id",
        "report_agent_days",
        ["conversation_id", "agent_id", "day"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_report_agent_days_conversation_id", table_name="report_agent_days")
    op.drop_table("report_agent_days")
    op.drop_table("report_rollups")
    with op.batch_alter_table("report_conversations") as batch:
        batch.drop_column("labels")
