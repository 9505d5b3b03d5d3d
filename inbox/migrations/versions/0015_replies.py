"""uploads (files agents attach to replies) and contact_merges (the audit of contact merges)

Revision ID: 0015_replies
Revises: 0014_contact_tags
Create Date: 2026-12-04 13:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_replies"
down_revision: str | None = "0014_contact_tags"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "contact_merges",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("into_contact_id", _ID, nullable=False),
        sa.Column("from_contact_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", _ID, nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("conflicts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_contact_merges_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["into_contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_merges_into_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_contact_merges_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_merges")),
    )
    op.create_index(op.f("ix_contact_merges_account_id"), "contact_merges", ["account_id"])
    op.create_index(op.f("ix_contact_merges_into_contact_id"), "contact_merges", ["into_contact_id"])
    op.create_table(
        "uploads",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=True),
        sa.Column("media_key", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_uploads_account_id_accounts")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_uploads_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index(op.f("ix_uploads_account_id"), "uploads", ["account_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_uploads_account_id"), table_name="uploads")
    op.drop_table("uploads")
    op.drop_index(op.f("ix_contact_merges_into_contact_id"), table_name="contact_merges")
    op.drop_index(op.f("ix_contact_merges_account_id"), table_name="contact_merges")
    op.drop_table("contact_merges")
