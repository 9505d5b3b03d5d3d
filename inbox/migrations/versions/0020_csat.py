"""satisfaction surveys: per-inbox settings and the surveys of resolved conversations

Revision ID: 0020_csat
Revises: 0019_contact_events
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0020_csat"
down_revision: str | None = "0019_contact_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "csat_settings",
        sa.Column("inbox_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("scale", sa.String(length=16), nullable=False),
        sa.Column("follow_up", sa.Boolean(), nullable=False),
        sa.Column("template_name", sa.String(length=512), nullable=True),
        sa.Column("template_language", sa.String(length=16), nullable=True),
        _when("updated_at", False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_csat_settings_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inboxes.id"], name=op.f("fk_csat_settings_inbox_id_inboxes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("inbox_id", name=op.f("pk_csat_settings")),
    )
    op.create_table(
        "csat_surveys",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=False),
        sa.Column("conversation_id", _ID, nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scale", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        _when("send_at", False),
        _when("sent_at"),
        _when("answered_at"),
        _when("resolved_at", False),
        _when("created_at", False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_csat_surveys_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_csat_surveys_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csat_surveys")),
    )
    with op.batch_alter_table("csat_surveys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_csat_surveys_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index("ix_csat_surveys_status_send_at", ["status", "send_at"], unique=False)
        batch_op.create_index("ix_csat_surveys_account_answered", ["account_id", "answered_at"], unique=False)


def downgrade() -> None:
    op.drop_table("csat_surveys")
    op.drop_table("csat_settings")
