"""Engine and session factory for the configured database, tuned per dialect."""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from casedesk.store import tenancy

WRITE_OPTION = "casedesk_write"
SQLITE_ANALYSIS_LIMIT = 1000
"""Rows ANALYZE samples per index on SQLite: statistics as good as a full pass for the
planner's choices, in milliseconds whatever the size of the tables."""
SQLITE_ANALYZE = (f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}", "ANALYZE")
SQLITE_BUSY_SECONDS = 30.0
"""How long a SQLite writer waits for its turn: in this process for the writer gate, then for
another process's write lock (SQLite's busy timeout)."""


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
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    writing = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


class WriterGate:
    """One SQLite writer at a time in this process, in order of arrival.

    SQLite has one write lock per file. Writers that meet at ``BEGIN IMMEDIATE`` wait in
    SQLite's busy handler, which sleeps up to 100 ms between tries and lets a newcomer take
    the lock before those already waiting; each of them also holds a pooled connection while
    it waits. Writers of this process therefore queue here first, on a FIFO ``asyncio.Lock``,
    and only the one whose turn it is opens a connection and begins. Between processes
    (``serve`` and ``casedesk worker`` share the file) SQLite's lock and its busy timeout
    still decide.

    An ``asyncio.Lock`` belongs to the event loop it first waits on, so there is one per loop.
    """

    def __init__(self, timeout: float = SQLITE_BUSY_SECONDS) -> None:
        self.timeout = timeout
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def acquire(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._lock().acquire()
        except TimeoutError:
            # As SQLite itself says when its busy timeout runs out, so callers see one error.
            raise OperationalError(
                "BEGIN IMMEDIATE",
                None,
                Exception(
                    f"database is locked: no turn to write within {self.timeout:g} s (is a"
                    " unit of work writing inside another one's write transaction?)"
                ),
            ) from None

    def release(self) -> None:
        self._lock().release()


PING_AFTER_IDLE_SECONDS = 5.0
"""A pooled connection on a database server is checked with a ping before use only when it
has sat idle this long: a busy server reuses live connections without a round trip each,
while one that waited (through a database restart, a proxy's idle cut) is tested first."""


def _ping_idle_connections(engine: AsyncEngine, idle_seconds: float) -> None:
    """What ``pool_pre_ping`` does, but only for connections idle ``idle_seconds`` or more.

    A failed ping raises ``DisconnectionError``, on which the pool throws the connection
    away and checks out a fresh one (SQLAlchemy's documented pessimistic disconnect handling).
    """
    dialect = engine.sync_engine.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["casedesk_idle_since"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("casedesk_idle_since", None)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection idle since {since:.0f} is gone") from exc

    event.listen(engine.sync_engine.pool, "checkin", checkin)
    event.listen(engine.sync_engine.pool, "checkout", checkout)


class Database:
    """Owns the engine; hands out sessions carrying the tenant guard."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        echo: bool = False,
        ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS,
    ) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        options: dict[str, Any] = {
            "echo": echo,
            "json_serializer": _json_text,
            "json_deserializer": orjson.loads,
        }
        self.writer_gate: WriterGate | None = None
        if self.dialect == "sqlite":
            if self.url.database in (None, "", ":memory:"):
                raise ValueError("an in-memory SQLite database cannot be shared; use a file")
            self.writer_gate = WriterGate()
            options["connect_args"] = {"timeout": SQLITE_BUSY_SECONDS}
            # WAL readers run beside the one writer, so a read never waits for a write: the
            # pool keeps pool_size connections and opens more when all are busy (the writer
            # gate is taken before a writer checks one out, so writers waiting hold none).
            # Recycling lets long-lived connections load statistics a later ANALYZE wrote.
            options.update(pool_size=pool_size, max_overflow=-1, pool_recycle=1800)
        else:
            options.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
        if self.dialect == "mysql":
            options["isolation_level"] = "READ COMMITTED"
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            _ping_idle_connections(self.engine, ping_after_idle_seconds)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    def session(self, tenant_id: Any = None) -> AsyncSession:
        session = self.sessionmaker()
        tenancy.bind(session, tenant_id)
        return session

    async def begin_writer(self) -> None:
        """Wait for this process's turn to write (SQLite); on other databases, nothing.
        Every call is paired with one ``end_writer()``."""
        if self.writer_gate is not None:
            await self.writer_gate.acquire()

    def end_writer(self) -> None:
        if self.writer_gate is not None:
            self.writer_gate.release()

    async def refresh_statistics(self) -> None:
        """Let SQLite's planner know the tables as they are now (``ANALYZE``, sampled): run
        after migrations, when a server or worker starts and by the hourly housekeeping.
        Connections opened later load them (the pool renews its connections within half an
        hour). PostgreSQL and MariaDB keep their statistics themselves."""
        if self.dialect != "sqlite":
            return
        await self.begin_writer()
        try:
            async with self.engine.connect() as connection:
                await connection.execution_options(**{WRITE_OPTION: True})
                async with connection.begin():
                    for statement in SQLITE_ANALYZE:
                        await connection.exec_driver_sql(statement)
        finally:
            self.end_writer()

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def nullpool_engine(url: str) -> AsyncEngine:
    """A short-lived engine for one-off tasks such as migrations."""
    return create_async_engine(url, poolclass=NullPool)
