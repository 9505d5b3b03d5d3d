"""routing rules and firings, assignment policies and queue, bot flows and runs

Revision ID: 0007_routing
Revises: 0002_search
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_routing"
down_revision: str | None = "0002_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_flows",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_bot_flows_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_flows")),
    )
    op.create_index(op.f("ix_bot_flows_account_id"), "bot_flows", ["account_id"], unique=False)
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("match", sa.String(length=8), nullable=False),
        sa.Column("triggers", sa.JSON(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("stop", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_routing_rules_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    op.create_index(
        "ix_routing_rules_account_position", "routing_rules", ["account_id", "position"], unique=False
    )
    op.create_table(
        "assignment_policies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("inbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("team_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("agent_capacity", sa.JSON(), nullable=False),
        sa.Column("release_on_offline", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cursor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_assignment_policies_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_assignment_policies_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_assignment_policies_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignment_policies")),
        sa.UniqueConstraint("inbox_id", name=op.f("uq_assignment_policies_inbox_id")),
        sa.UniqueConstraint("team_id", name=op.f("uq_assignment_policies_team_id")),
    )
    op.create_index(
        op.f("ix_assignment_policies_account_id"), "assignment_policies", ["account_id"], unique=False
    )
    op.create_table(
        "assignment_queue",
        sa.Column("conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("policy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_assignment_queue_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_assignment_queue_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["assignment_policies.id"],
            name=op.f("fk_assignment_queue_policy_id_assignment_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_assignment_queue")),
    )
    op.create_index(op.f("ix_assignment_queue_account_id"), "assignment_queue", ["account_id"], unique=False)
    op.create_index(op.f("ix_assignment_queue_policy_id"), "assignment_queue", ["policy_id"], unique=False)
    op.create_table(
        "bot_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("flow_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=100), nullable=False),
        sa.Column("entered", sa.Boolean(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("last_message_id", sa.BigInteger(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("refusals", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_bot_runs_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_bot_runs_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["flow_id"], ["bot_flows.id"], name=op.f("fk_bot_runs_flow_id_bot_flows"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_runs")),
    )
    op.create_index(
        "ix_bot_runs_conversation_status", "bot_runs", ["conversation_id", "status"], unique=False
    )
    op.create_index(op.f("ix_bot_runs_flow_id"), "bot_runs", ["flow_id"], unique=False)
    op.create_index(op.f("ix_bot_runs_status"), "bot_runs", ["status"], unique=False)
    op.create_table(
        "rule_firings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("rule_name", sa.String(length=200), nullable=False),
        sa.Column("conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_rule_firings_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_rule_firings_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_firings")),
    )
    op.create_index(op.f("ix_rule_firings_account_id"), "rule_firings", ["account_id"], unique=False)
    op.create_index(
        "ix_rule_firings_conversation_rule", "rule_firings", ["conversation_id", "rule_id"], unique=False
    )
    op.create_index(op.f("ix_rule_firings_rule_id"), "rule_firings", ["rule_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_rule_firings_rule_id"), table_name="rule_firings")
    op.drop_index("ix_rule_firings_conversation_rule", table_name="rule_firings")
    op.drop_index(op.f("ix_rule_firings_account_id"), table_name="rule_firings")
    op.drop_table("rule_firings")
    op.drop_index(op.f("ix_bot_runs_status"), table_name="bot_runs")
    op.drop_index(op.f("ix_bot_runs_flow_id"), table_name="bot_runs")
    op.drop_index("ix_bot_runs_conversation_status", table_name="bot_runs")
    op.drop_table("bot_runs")
    op.drop_index(op.f("ix_assignment_queue_policy_id"), table_name="assignment_queue")
    op.drop_index(op.f("ix_assignment_queue_account_id"), table_name="assignment_queue")
    op.drop_table("assignment_queue")
    op.drop_index(op.f("ix_assignment_policies_account_id"), table_name="assignment_policies")
    op.drop_table("assignment_policies")
    op.drop_index("ix_routing_rules_account_position", table_name="routing_rules")
    op.drop_table("routing_rules")
    op.drop_index(op.f("ix_bot_flows_account_id"), table_name="bot_flows")
    op.drop_table("bot_flows")
