"""A named lease held by one process at a time: the relay, the mailbox IDLE watcher and
the housekeeping run only where theirs is held.

PostgreSQL uses a session advisory lock (a database's own) and MariaDB/MySQL ``GET_LOCK``
(named after the lease and the database, as its names are the server's), both held by a
dedicated connection, so a process that dies releases the lease with its connection.
SQLite has no such lock, so the lease is an OS file lock (``flock``) on a file beside the
database file (``casedesk.db-lease-<name>``): `casedesk serve` and any number of
`casedesk worker` processes can share one SQLite file, and the lock dies with the process
that holds it.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from casedesk.store.database import Database


def lease_file(database: Database, name: str) -> Path:
    """Where the lease ``name`` of a SQLite database is locked."""
    return Path(f"{database.url.database}-lease-{name}")


class Lease:
    def __init__(self, database: Database, name: str) -> None:
        self.database = database
        self.name = name
        self._connection: AsyncConnection | None = None
        self._file: FileLock | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    async def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.database.dialect == "sqlite":
            return self._try_lock_file()
        connection = await self.database.engine.connect()
        try:
            granted = await connection.scalar(*self._acquire_statement())
            await connection.commit()
        except Exception:
            await connection.close()
            raise
        if granted:
            self._connection = connection
            return True
        await connection.close()
        return False

    def _try_lock_file(self) -> bool:
        # Never a "soft" lock (a file that merely exists): it would outlive a killed process.
        lock = FileLock(
            lease_file(self.database, self.name),
            thread_local=False,
            blocking=False,
            fallback_to_soft=False,
            preserve_lock_file=True,
        )
        try:
            lock.acquire()
        except Timeout:
            return False
        self._file = lock
        return True

    async def alive(self) -> bool:
        """Whether the lease is still held (for a database lock: its connection answers)."""
        if self._file is not None:
            return True
        if self._connection is None:
            return False
        try:
            await self._connection.execute(text("SELECT 1"))
            await self._connection.commit()
        except Exception:
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        if self._file is not None:
            lock, self._file = self._file, None
            lock.release()
            return
        if self._connection is None:
            return
        try:
            release = (
                "SELECT pg_advisory_unlock(:key)"
                if self.database.dialect == "postgresql"
                else "SELECT RELEASE_LOCK(:name)"
            )
            await self._connection.execute(text(release), self._params())
        finally:
            await self._drop()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    def _params(self) -> dict[str, object]:
        return {"key": zlib.crc32(self.name.encode()), "name": self._server_wide_name()}

    def _server_wide_name(self) -> str:
        """MariaDB's ``GET_LOCK`` names are the server's, not a database's (PostgreSQL's
        advisory locks are the database's): two casedesk databases on one server must not
        share a lease, so the name carries the database's, within the 64 characters allowed."""
        name = f"{self.name}@{self.database.url.database}"
        if len(name) <= 64:
            return name
        return f"{self.name[:23]}@{hashlib.sha256(name.encode()).hexdigest()[:40]}"

    def _acquire_statement(self) -> tuple[TextClause, dict[str, object]]:
        if self.database.dialect == "postgresql":
            return text("SELECT pg_try_advisory_lock(:key)"), self._params()
        return text("SELECT GET_LOCK(:name, 0) = 1"), self._params()
