"""A named lease held by one process at a time: the relay runs only where it is held.

PostgreSQL uses a session advisory lock and MariaDB/MySQL ``GET_LOCK``, both held by a
dedicated connection, so a process that dies releases the lease with its connection.
SQLite has one writer process in the embedded mode, so the lease is always granted.
"""

from __future__ import annotations

import zlib

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from casedesk.store.database import Database


class Lease:
    def __init__(self, database: Database, name: str) -> None:
        self.database = database
        self.name = name
        self._connection: AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self.database.dialect == "sqlite"

    async def try_acquire(self) -> bool:
        if self.held:
            return True
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

    async def alive(self) -> bool:
        """Whether the connection that holds the lease still answers."""
        if self._connection is None:
            return self.database.dialect == "sqlite"
        try:
            await self._connection.execute(text("SELECT 1"))
            await self._connection.commit()
        except Exception:
            await self._drop()
            return False
        return True

    async def release(self) -> None:
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
        return {"key": zlib.crc32(self.name.encode()), "name": self.name}

    def _acquire_statement(self) -> tuple[TextClause, dict[str, object]]:
        if self.database.dialect == "postgresql":
            return text("SELECT pg_try_advisory_lock(:key)"), self._params()
        return text("SELECT GET_LOCK(:name, 0) = 1"), self._params()
