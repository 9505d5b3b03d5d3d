"""Full-text search on SQLite: trigram FTS5 indexes over message text and contact names/addresses.

PostgreSQL keeps plain ILIKE for now (see inbox/queries.py).

Revision ID: 0002_search
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_search"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UP = [
    "CREATE VIRTUAL TABLE message_search USING fts5(text, content='messages', content_rowid='id', tokenize='trigram')",
    "INSERT INTO message_search(rowid, text) SELECT id, text FROM messages WHERE text IS NOT NULL",
    """CREATE TRIGGER message_search_ai AFTER INSERT ON messages WHEN new.text IS NOT NULL BEGIN
         INSERT INTO message_search(rowid, text) VALUES (new.id, new.text); END""",
    """CREATE TRIGGER message_search_ad AFTER DELETE ON messages WHEN old.text IS NOT NULL BEGIN
         INSERT INTO message_search(message_search, rowid, text) VALUES ('delete', old.id, old.text); END""",
    """CREATE TRIGGER message_search_au AFTER UPDATE OF text ON messages BEGIN
         INSERT INTO message_search(message_search, rowid, text)
           SELECT 'delete', old.id, old.text WHERE old.text IS NOT NULL;
         INSERT INTO message_search(rowid, text) SELECT new.id, new.text WHERE new.text IS NOT NULL; END""",
    "CREATE VIRTUAL TABLE contact_search USING fts5(name, email, phone, content='contacts', content_rowid='id',"
    " tokenize='trigram')",
    "INSERT INTO contact_search(rowid, name, email, phone) SELECT id, name, email, phone FROM contacts",
    """CREATE TRIGGER contact_search_ai AFTER INSERT ON contacts BEGIN
         INSERT INTO contact_search(rowid, name, email, phone) VALUES (new.id, new.name, new.email, new.phone); END""",
    """CREATE TRIGGER contact_search_ad AFTER DELETE ON contacts BEGIN
         INSERT INTO contact_search(contact_search, rowid, name, email, phone)
           VALUES ('delete', old.id, old.name, old.email, old.phone); END""",
    """CREATE TRIGGER contact_search_au AFTER UPDATE OF name, email, phone ON contacts BEGIN
         INSERT INTO contact_search(contact_search, rowid, name, email, phone)
           VALUES ('delete', old.id, old.name, old.email, old.phone);
         INSERT INTO contact_search(rowid, name, email, phone) VALUES (new.id, new.name, new.email, new.phone); END""",
]

SQLITE_DOWN = [
    "DROP TRIGGER contact_search_au",
    "DROP TRIGGER contact_search_ad",
    "DROP TRIGGER contact_search_ai",
    "DROP TABLE contact_search",
    "DROP TRIGGER message_search_au",
    "DROP TRIGGER message_search_ad",
    "DROP TRIGGER message_search_ai",
    "DROP TABLE message_search",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_DOWN:
            op.execute(statement)
