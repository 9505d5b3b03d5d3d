"""query speed: newest-first walks of an inbox across statuses; trigram indexes for search on PostgreSQL

- ``ix_conversations_inbox_activity`` (inbox_id, last_activity_at, id): lists and searches without a
  status filter walk an inbox newest first and stop after a page, instead of sorting the inbox.
- PostgreSQL: pg_trgm GIN indexes on the expressions the search's LIKE uses (lower(messages.text),
  lower(contacts.name), lower(contacts.email), contacts.phone). SQLite has its FTS5 trigram tables
  (0002_search) instead.

Revision ID: 0010_query_speed
Revises: 0009_policies
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_query_speed"
down_revision: str | None = "0009_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_TRIGRAM_INDEXES = {
    "ix_messages_text_trgm": "messages USING gin (lower(text) gin_trgm_ops)",
    "ix_contacts_name_trgm": "contacts USING gin (lower(name) gin_trgm_ops)",
    "ix_contacts_email_trgm": "contacts USING gin (lower(email) gin_trgm_ops)",
    "ix_contacts_phone_trgm": "contacts USING gin (phone gin_trgm_ops)",
}


def upgrade() -> None:
    op.create_index(
        "ix_conversations_inbox_activity", "conversations", ["inbox_id", "last_activity_at", "id"]
    )
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, target in PG_TRIGRAM_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON {target}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in PG_TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX {name}")
    op.drop_index("ix_conversations_inbox_activity", table_name="conversations")
