"""A pooled connection that sat idle is pinged before use and replaced when it is gone; one
used again at once is not pinged (no extra round trip per request on a busy server)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from casedesk.store.database import Database

servers_only = pytest.mark.backends("postgresql", "mariadb")


async def _session_id(database: Database) -> int:
    query = (
        "SELECT pg_backend_pid()" if database.dialect == "postgresql" else "SELECT CONNECTION_ID()"
    )
    async with database.engine.connect() as connection:
        return int((await connection.execute(text(query))).scalar_one())


async def _end_session(admin: Database, session_id: int) -> None:
    statement = (
        f"SELECT pg_terminate_backend({session_id})"
        if admin.dialect == "postgresql"
        else f"KILL {session_id}"
    )
    async with admin.engine.connect() as connection:
        await connection.execute(text(statement))
    await asyncio.sleep(0.2)


def _count_pings(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    dialect = database.engine.sync_engine.dialect
    pings: list[int] = []
    real = dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


@servers_only
async def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(backend_url, pool_size=1, ping_after_idle_seconds=0.05)
    admin = Database(backend_url, pool_size=1)
    try:
        pings = _count_pings(database, monkeypatch)
        dropped = await _session_id(database)
        await _end_session(admin, dropped)
        await asyncio.sleep(0.1)
        assert await _session_id(database) != dropped
        assert pings, "the idle connection was used without a ping"
    finally:
        await database.dispose()
        await admin.dispose()


@servers_only
async def test_without_the_ping_the_dropped_connection_fails_the_next_query(
    backend_url: str,
) -> None:
    """What the ping is for: the same drop, with a connection that is not idle long enough."""
    database = Database(backend_url, pool_size=1, ping_after_idle_seconds=3600)
    admin = Database(backend_url, pool_size=1)
    try:
        await _end_session(admin, await _session_id(database))
        with pytest.raises(DBAPIError):  # the driver's "connection closed", as SQLAlchemy wraps it
            await _session_id(database)
    finally:
        await database.dispose()
        await admin.dispose()


@servers_only
async def test_a_connection_used_again_at_once_is_not_pinged(
    backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(backend_url, pool_size=1)
    try:
        pings = _count_pings(database, monkeypatch)
        first = await _session_id(database)
        for _ in range(5):
            assert await _session_id(database) == first
        assert pings == []
    finally:
        await database.dispose()
