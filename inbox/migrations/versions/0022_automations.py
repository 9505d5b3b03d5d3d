"""automations, their runs (durable timers) and each run's step outcomes

Revision ID: 0022_automations
Revises: 0021_report_rollups
Create Date: 2026-12-04 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_automations"
down_revision: str | None = "0021_report_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "automations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("trigger_type", sa.String(length=32), nullable=False),
        sa.Column("trigger_key", sa.String(length=200), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", _ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("automations", "account_id", "accounts"),
        _fk("automations", "created_by", "users", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automations")),
    )
    op.create_index(
        "ix_automations_trigger", "automations", ["account_id", "trigger_type", "trigger_key", "active"]
    )
    op.create_table(
        "automation_runs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("automation_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("contact_id", _ID, nullable=False),
        sa.Column("conversation_id", _ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trigger_event_id", sa.BigInteger(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        _fk("automation_runs", "automation_id", "automations", ondelete="CASCADE"),
        _fk("automation_runs", "account_id", "accounts"),
        _fk("automation_runs", "contact_id", "contacts", ondelete="CASCADE"),
        _fk("automation_runs", "conversation_id", "conversations", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_runs")),
    )
    op.create_index("ix_automation_runs_due", "automation_runs", ["status", "run_at"])
    op.create_index("ix_automation_runs_automation", "automation_runs", ["automation_id", "id"])
    op.create_index(
        "ix_automation_runs_contact", "automation_runs", ["contact_id", "automation_id", "status"]
    )
    op.create_index("ix_automation_runs_conversation", "automation_runs", ["conversation_id", "status"])
    op.create_table(
        "automation_run_steps",
        sa.Column("id", _ID, nullable=False),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _fk("automation_run_steps", "run_id", "automation_runs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_run_steps")),
    )
    op.create_index("ix_automation_run_steps_run", "automation_run_steps", ["run_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_automation_run_steps_run", table_name="automation_run_steps")
    op.drop_table("automation_run_steps")
    op.drop_index("ix_automation_runs_conversation", table_name="automation_runs")
    op.drop_index("ix_automation_runs_contact", table_name="automation_runs")
    op.drop_index("ix_automation_runs_automation", table_name="automation_runs")
    op.drop_index("ix_automation_runs_due", table_name="automation_runs")
    op.drop_table("automation_runs")
    op.drop_index("ix_automations_trigger", table_name="automations")
    op.drop_table("automations")
