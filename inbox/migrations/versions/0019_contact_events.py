"""contact events, their products and signed sources, custom segmentations

Revision ID: 0019_contact_events
Revises: 0018_webhooks
Create Date: 2026-12-04 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_contact_events"
down_revision: str | None = "0018_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "event_sources",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("event_sources", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_sources")),
    )
    op.create_index(op.f("ix_event_sources_account_id"), "event_sources", ["account_id"])
    op.create_table(
        "products",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("products", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("account_id", "external_id", name=op.f("uq_products_account_id")),
    )
    op.create_table(
        "contact_events",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("contact_id", _ID, nullable=False),
        sa.Column("product_id", _ID, nullable=True),
        sa.Column("source_id", _ID, nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("effects", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        _fk("contact_events", "account_id", "accounts"),
        _fk("contact_events", "contact_id", "contacts", ondelete="CASCADE"),
        _fk("contact_events", "product_id", "products"),
        _fk("contact_events", "source_id", "event_sources"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_events")),
        sa.UniqueConstraint("account_id", "external_id", name=op.f("uq_contact_events_account_id")),
    )
    op.create_index("ix_contact_events_contact", "contact_events", ["contact_id", "occurred_at", "id"])
    op.create_index("ix_contact_events_product", "contact_events", ["product_id", "occurred_at", "id"])
    op.create_table(
        "segmentations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("product_id", _ID, nullable=True),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("condition", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("segmentations", "account_id", "accounts"),
        _fk("segmentations", "product_id", "products"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segmentations")),
    )
    op.create_index("ix_segmentations_account_event", "segmentations", ["account_id", "event_type", "active"])


def downgrade() -> None:
    op.drop_index("ix_segmentations_account_event", table_name="segmentations")
    op.drop_table("segmentations")
    op.drop_index("ix_contact_events_product", table_name="contact_events")
    op.drop_index("ix_contact_events_contact", table_name="contact_events")
    op.drop_table("contact_events")
    op.drop_table("products")
    op.drop_index(op.f("ix_event_sources_account_id"), table_name="event_sources")
    op.drop_table("event_sources")
