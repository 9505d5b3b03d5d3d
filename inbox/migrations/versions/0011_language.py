"""language: the account's language (server texts, the default for its users) and each user's own

- ``accounts.language``: BCP 47 tag of a supported language (``en``, ``pt-BR``); quota alert mails,
  consent confirmations and other server texts of the account use it.
- ``users.language``: the agent's own choice for the web inbox; NULL follows the account's.

Revision ID: 0011_language
Revises: 0010_query_speed
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_language"
down_revision: str | None = "0010_query_speed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=False, server_default="en"))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("language")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("language")
