"""Engine and session factory for the configured database, tuned per dialect."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from casedesk.store import tenancy

WRITE_OPTION = "casedesk_write"


def _json_text(value: Any) -> str:
    """JSON columns are written by the serialiser that later reads and publishes them, so a
    value it cannot serialise (nested too deep, an integer beyond 64 bits) fails its own
    transaction instead of an event or a response after the commit."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver must not open transactions itself: _sqlite_begin does, so that a
    # writing transaction takes the write lock at BEGIN instead of failing on upgrade.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    writing = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


class Database:
    """Owns the engine; hands out sessions carrying the tenant guard."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        options: dict[str, Any] = {
            "echo": echo,
            "json_serializer": _json_text,
            "json_deserializer": orjson.loads,
        }
        if self.dialect == "sqlite":
            options["connect_args"] = {"timeout": 30}
            if self.url.database in (None, "", ":memory:"):
                raise ValueError("an in-memory SQLite database cannot be shared; use a file")
        else:
            options.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
            options["pool_recycle"] = 1800
        if self.dialect == "mysql":
            options["isolation_level"] = "READ COMMITTED"
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    def session(self, tenant_id: Any = None) -> AsyncSession:
        session = self.sessionmaker()
        tenancy.bind(session, tenant_id)
        return session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def nullpool_engine(url: str) -> AsyncEngine:
    """A short-lived engine for one-off tasks such as migrations."""
    return create_async_engine(url, poolclass=NullPool)
