"""list attribute items, audiences, stored broadcasts with their recipients

Revision ID: 0016_broadcasts
Revises: 0015_replies
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from inbox.attributes import MAX_KEY, indexed_text

revision: str = "0016_broadcasts"
down_revision: str | None = "0015_replies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contact_attribute_items",
        sa.Column("contact_id", _ID, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("item", sa.String(length=500), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_contact_attribute_items_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_attribute_items_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "key", "item", name=op.f("pk_contact_attribute_items")),
    )
    op.create_index(
        "ix_contact_attribute_items_item", "contact_attribute_items", ["account_id", "key", "item"]
    )
    _index_list_items()
    op.create_table(
        "audiences",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("created_by", _ID, nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_audiences_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_audiences_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audiences")),
    )
    op.create_index(op.f("ix_audiences_account_id"), "audiences", ["account_id"])
    op.create_table(
        "broadcasts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("channel_id", _ID, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("template", sa.JSON(), nullable=True),
        sa.Column("audience", sa.JSON(), nullable=True),
        sa.Column("audience_id", sa.BigInteger(), nullable=True),
        sa.Column("allow_replies", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("canceled", sa.Integer(), nullable=False),
        sa.Column("created_by", _ID, nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("finished_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_broadcasts_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_broadcasts_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_broadcasts_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    op.create_index("ix_broadcasts_account_id_id", "broadcasts", ["account_id", "id"])
    op.create_table(
        "broadcast_recipients",
        sa.Column("broadcast_id", _ID, nullable=False),
        sa.Column("contact_id", _ID, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_broadcast_recipients_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_broadcast_recipients_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "contact_id", name=op.f("pk_broadcast_recipients")),
    )
    op.create_index(
        "ix_broadcast_recipients_outcome", "broadcast_recipients", ["broadcast_id", "outcome", "contact_id"]
    )
    op.create_index("ix_broadcast_recipients_message_id", "broadcast_recipients", ["message_id"])


def _index_list_items() -> None:
    """The list attributes contacts already have, item by item (what set_attributes keeps from now on)."""
    conn = op.get_bind()
    contacts = sa.table(
        "contacts",
        sa.column("id", sa.Integer),
        sa.column("account_id", sa.Integer),
        sa.column("attributes", sa.JSON),
    )
    items = sa.table(
        "contact_attribute_items",
        sa.column("contact_id", sa.Integer),
        sa.column("key", sa.String),
        sa.column("item", sa.String),
        sa.column("account_id", sa.Integer),
    )
    rows = [
        {"contact_id": contact_id, "key": key, "item": item, "account_id": account_id}
        for contact_id, account_id, attributes in conn.execute(sa.select(contacts))
        for key, value in (attributes or {}).items()
        if isinstance(value, list) and 0 < len(key) <= MAX_KEY
        for item in sorted({x for x in (indexed_text(v) for v in value) if x is not None})
    ]
    if rows:
        conn.execute(sa.insert(items), rows)


def downgrade() -> None:
    op.drop_table("broadcast_recipients")
    op.drop_table("broadcasts")
    op.drop_table("audiences")
    op.drop_table("contact_attribute_items")
