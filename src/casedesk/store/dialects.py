"""Statements that each database spells its own way."""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_if_new(session: AsyncSession, model: type[Any], values: dict[str, Any]) -> bool:
    """Insert one row unless its key exists, in one statement; True when it was inserted.

    A concurrent transaction inserting the same key makes this one wait for its outcome
    (``ON CONFLICT DO NOTHING``, ``INSERT IGNORE`` on MariaDB), so exactly one of them wins.
    """
    connection = await session.connection()
    statement = _insert_ignoring(connection.dialect.name, cast(Table, model.__table__))
    result = await connection.execute(statement, values)
    return bool(result.rowcount == 1)


@functools.cache
def _insert_ignoring(dialect: str, table: Table) -> Any:
    """The dialect's "insert unless the key exists" of ``table``, made once: the values are
    parameters of each execution, so the compiled statement is reused."""
    if dialect == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    return insert(table).prefix_with("IGNORE")
