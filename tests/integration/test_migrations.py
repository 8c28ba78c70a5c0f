"""Migrations apply identically on every backend, and the app refuses a stale schema."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from casedesk.app import NotMigrated, ensure_migrated
from casedesk.bootstrap import build
from casedesk.store import migrate
from casedesk.store.database import nullpool_engine
from casedesk.store.models import Base
from tests.conftest import settings_for
from tests.support.backends import ScratchDatabase


async def _tables(url: str) -> set[str]:
    engine = nullpool_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names)


async def test_upgrade_creates_every_mapped_table(empty_database: ScratchDatabase) -> None:
    engine = nullpool_engine(empty_database.url)
    try:
        assert not (await migrate.migration_state(engine)).up_to_date
        await migrate.upgrade(engine)
        state = await migrate.migration_state(engine)
    finally:
        await engine.dispose()
    assert state.up_to_date
    assert set(Base.metadata.tables) <= await _tables(empty_database.url)


async def test_downgrade_to_base_and_up_again(empty_database: ScratchDatabase) -> None:
    engine = nullpool_engine(empty_database.url)
    try:
        await migrate.upgrade(engine)
        await migrate.downgrade(engine, "base")
        assert not set(Base.metadata.tables) & await _tables(empty_database.url)
        await migrate.upgrade(engine)
        assert (await migrate.migration_state(engine)).up_to_date
    finally:
        await engine.dispose()


async def test_an_unmigrated_database_is_refused_with_the_fix(
    empty_database: ScratchDatabase,
) -> None:
    container = build(settings_for(empty_database.url))
    try:
        with pytest.raises(NotMigrated) as caught:
            await ensure_migrated(container)
    finally:
        await container.close()
    assert "casedesk db upgrade" in str(caught.value)


async def test_the_migrations_build_exactly_the_mapped_schema(
    empty_database: ScratchDatabase,
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = nullpool_engine(empty_database.url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": False}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert differences == []
