"""texts as long as the API accepts on MariaDB/MySQL

A case's description, its rating comment and a comment's body take up to 65,536 characters,
up to four bytes each; MariaDB/MySQL's TEXT holds 65,535 bytes, so there they become
MEDIUMTEXT. On SQLite and PostgreSQL TEXT already holds them: nothing changes.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("cases", "description", True),
    ("cases", "rating_comment", True),
    ("comments", "body", False),
)


def _on_mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    if not _on_mysql():
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table,
            column,
            type_=mysql.MEDIUMTEXT(),
            existing_type=sa.Text(),
            existing_nullable=nullable,
        )


def downgrade() -> None:
    if not _on_mysql():
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table,
            column,
            type_=sa.Text(),
            existing_type=mysql.MEDIUMTEXT(),
            existing_nullable=nullable,
        )
