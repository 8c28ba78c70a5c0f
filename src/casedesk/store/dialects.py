"""Statements that each database spells its own way."""

from __future__ import annotations

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
    table = cast(Table, model.__table__)
    connection = await session.connection()
    dialect = connection.dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = postgresql_insert(table).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite_insert(table).values(values).on_conflict_do_nothing()
    else:
        statement = insert(table).prefix_with("IGNORE").values(values)
    result = await connection.execute(statement)
    return bool(result.rowcount == 1)
