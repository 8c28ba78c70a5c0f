"""Apply and inspect the Alembic migrations shipped inside the package."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casedesk.store.database import SQLITE_ANALYZE, WRITE_OPTION

SCRIPT_LOCATION = "casedesk:migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@dataclass(frozen=True, slots=True)
class MigrationState:
    current: tuple[str, ...]
    heads: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return set(self.current) == set(self.heads)


def head_revisions() -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


async def migration_state(engine: AsyncEngine) -> MigrationState:
    def read(connection: Connection) -> tuple[str, ...]:
        return tuple(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as connection:
        current = await connection.run_sync(read)
    return MigrationState(current=current, heads=head_revisions())


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)
        if connection.dialect.name == "sqlite":
            # SQLite's planner has no statistics until ANALYZE writes them; a migration
            # may have added indexes or rebuilt tables (batch mode drops their statistics).
            for statement in SQLITE_ANALYZE:
                connection.exec_driver_sql(statement)

    async with _writing(engine) as connection:
        await connection.run_sync(run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    def run(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), revision)

    async with _writing(engine) as connection:
        await connection.run_sync(run)


@contextlib.asynccontextmanager
async def _writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction begun as a writer: on SQLite it waits for the write lock at BEGIN (up
    to the busy timeout) instead of failing when, after reading the revision, it would
    upgrade its read lock while a server writes."""
    async with engine.connect() as connection:
        await connection.execution_options(**{WRITE_OPTION: True})
        async with connection.begin():
            yield connection
