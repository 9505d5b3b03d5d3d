"""contact tags, indexed contact attributes, the AUTO mark on contacts, the account's contact limit

Revision ID: 0014_contact_tags
Revises: 0013_reports
Create Date: 2026-12-04 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from inbox.attributes import MAX_KEY, indexed_number, indexed_text

revision: str = "0014_contact_tags"
down_revision: str | None = "0013_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_limit", sa.Integer(), nullable=True))
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auto_captured", sa.Boolean(), nullable=False, server_default="0"))
    op.create_table(
        "contact_tags",
        sa.Column("contact_id", _ID, nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_contact_tags_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_tags_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "tag", name=op.f("pk_contact_tags")),
    )
    op.create_index("ix_contact_tags_account_tag", "contact_tags", ["account_id", "tag", "contact_id"])
    op.create_table(
        "contact_attributes",
        sa.Column("contact_id", _ID, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("text_value", sa.String(length=500), nullable=True),
        sa.Column("number_value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_contact_attributes_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_attributes_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "key", name=op.f("pk_contact_attributes")),
    )
    op.create_index("ix_contact_attributes_text", "contact_attributes", ["account_id", "key", "text_value"])
    op.create_index(
        "ix_contact_attributes_number", "contact_attributes", ["account_id", "key", "number_value"]
    )
    _index_existing_attributes()


def _index_existing_attributes() -> None:
    """Index the attributes contacts already have."""
    conn = op.get_bind()
    contacts = sa.table(
        "contacts",
        sa.column("id", sa.Integer),
        sa.column("account_id", sa.Integer),
        sa.column("attributes", sa.JSON),
    )
    index = sa.table(
        "contact_attributes",
        sa.column("contact_id", sa.Integer),
        sa.column("key", sa.String),
        sa.column("account_id", sa.Integer),
        sa.column("text_value", sa.String),
        sa.column("number_value", sa.Float),
    )
    rows = [
        {
            "contact_id": contact_id,
            "key": key,
            "account_id": account_id,
            "text_value": indexed_text(value),
            "number_value": indexed_number(value),
        }
        for contact_id, account_id, attributes in conn.execute(sa.select(contacts))
        for key, value in (attributes or {}).items()
        if indexed_text(value) is not None and 0 < len(key) <= MAX_KEY
    ]
    if rows:
        conn.execute(sa.insert(index), rows)


def downgrade() -> None:
    op.drop_index("ix_contact_attributes_number", table_name="contact_attributes")
    op.drop_index("ix_contact_attributes_text", table_name="contact_attributes")
    op.drop_table("contact_attributes")
    op.drop_index("ix_contact_tags_account_tag", table_name="contact_tags")
    op.drop_table("contact_tags")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("auto_captured")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("contact_limit")
