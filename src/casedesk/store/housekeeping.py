"""Deleting rows that have outlived their use, a bounded slice at a time.

Each call deletes the rows of one table older than a cutoff that fall within one ``step``
after the oldest of them, so a large backlog is worked off in many short transactions on
every database (PostgreSQL and SQLite have no ``DELETE … LIMIT``), whatever the table's key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.store.tenancy import ALL_TENANTS


async def purge_slice(
    session: AsyncSession,
    model: type[Any],
    age: Any,
    cutoff: datetime,
    *,
    step: timedelta,
    where: tuple[ColumnElement[bool], ...] = (),
) -> int:
    """Delete the rows of every tenant with ``age`` before ``cutoff`` (and ``where``) that
    lie within ``step`` of the oldest such row; returns how many (0: nothing is left)."""
    oldest = await session.scalar(
        select(func.min(age)).where(age < cutoff, *where).execution_options(**{ALL_TENANTS: True})
    )
    if oldest is None:
        return 0
    result = cast(
        CursorResult[Any],
        await session.execute(
            delete(model)
            .where(age < min(oldest + step, cutoff), *where)
            .execution_options(**{ALL_TENANTS: True, "synchronize_session": False})
        ),
    )
    return int(result.rowcount or 0)
