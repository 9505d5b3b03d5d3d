"""attribute indexes end with contact_id, so audiences read ids from the index alone

Revision ID: 0023_audience_indexes
Revises: 0022_automations
Create Date: 2026-12-04 21:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023_audience_indexes"
down_revision: str | None = "0022_automations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_contact_attributes_text": ("contact_attributes", ["account_id", "key", "text_value"]),
    "ix_contact_attributes_number": ("contact_attributes", ["account_id", "key", "number_value"]),
    "ix_contact_attribute_items_item": ("contact_attribute_items", ["account_id", "key", "item"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [*columns, "contact_id"])


def downgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns)
