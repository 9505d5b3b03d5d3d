"""Alembic environment: always handed a live connection by ``inbox.schema.migrate``."""

from __future__ import annotations

from alembic import context

from inbox.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `switchboard migrate` (inbox.schema.migrate)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
