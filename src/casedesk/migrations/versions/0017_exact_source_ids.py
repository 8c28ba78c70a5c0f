"""source ids compared as written on MariaDB/MySQL

A subscription's seen ids are its source's ids, and sources tell ``abc`` from ``ABC``.
MariaDB/MySQL compare VARCHARs without regard to case by default, so there the column takes
the binary collation ``utf8mb4_bin``; an item whose id differed from a seen one only in case
would otherwise never fire. On SQLite and PostgreSQL strings already compare as written.

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _on_mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    if not _on_mysql():
        return
    op.alter_column(
        "subscription_seen_items",
        "source_id",
        type_=mysql.VARCHAR(255, collation="utf8mb4_bin"),
        existing_type=sa.String(255),
        existing_nullable=False,
    )


def downgrade() -> None:
    if not _on_mysql():
        return
    op.alter_column(
        "subscription_seen_items",
        "source_id",
        type_=sa.String(255),
        existing_type=mysql.VARCHAR(255, collation="utf8mb4_bin"),
        existing_nullable=False,
    )
