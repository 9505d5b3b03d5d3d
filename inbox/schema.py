"""Schema migrations (Alembic), run in-process on the application's own engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from inbox.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK_KEY = 0x5B0B  # arbitrary; next to the event-order lock in inbox/events.py


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(db: Database, revision: str = "head") -> None:
    """Bring the database to ``revision``. Idempotent; safe at every start."""

    def upgrade(connection: Connection, *_: Any) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with db.engine.begin() as conn:
        if not db.is_sqlite:
            # Several gateways and workers start at once: one migrates, the others wait and find the
            # schema current (the lock is released with the transaction).
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        await conn.run_sync(upgrade)
