"""Migrations apply identically on every backend, and the app refuses a stale schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, inspect

from casedesk.bootstrap import NotMigrated, build, ensure_migrated
from casedesk.store import migrate
from casedesk.store.database import nullpool_engine
from casedesk.store.models import Base, OutboxEvent, Tenant
from casedesk.store.search import engine_object
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


def _mapped(obj: object, name: str | None, kind: str, reflected: bool, other: object) -> bool:
    """Leave out of the comparison the full-text engines' own objects (each database's)."""
    return not (reflected and engine_object(name, kind))


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
                    MigrationContext.configure(
                        sync, opts={"compare_type": False, "include_object": _mapped}
                    ),
                    Base.metadata,
                )
            )
    finally:
        await engine.dispose()
    assert differences == []


async def test_events_delivered_before_feed_positions_keep_their_sequence_as_position(
    empty_database: ScratchDatabase,
) -> None:
    """A feed reader's saved cursor (a sequence) stays valid across the upgrade, and the
    relay places the next events after every kept one."""
    engine = nullpool_engine(empty_database.url)
    tenant = uuid.uuid4()
    try:
        await migrate.upgrade(engine, "0007")
        async with engine.begin() as connection:
            # Only the columns revision 0007 has.
            await connection.execute(
                insert(Tenant.__table__).values(
                    id=tenant, slug="old", name="Old", edition="standard", enabled=True
                )
            )
            for number, published in ((1, True), (2, True), (3, False)):
                await connection.execute(
                    insert(OutboxEvent.__table__).values(
                        tenant_id=tenant,
                        event_id=uuid.uuid4(),
                        type="case.created",
                        source="s",
                        data={},
                        traceparent=f"00-{number:032x}-{number:016x}-01",
                        published_at=datetime.now(UTC) if published else None,
                    )
                )
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    container = build(settings_for(empty_database.url))
    try:
        async with container.unit_of_work() as uow:
            await uow.begin_write()
            pending = await uow.outbox.pending(limit=10)
            await uow.outbox.mark_published([event.id for event in pending])
            await uow.commit()
        async with container.unit_of_work(tenant) as uow:
            feed = await uow.outbox.after(0, limit=10)
    finally:
        await container.close()
    assert [(event.id, event.position) for event in feed[:2]] == [(1, 1), (2, 2)]
    assert feed[2].id == 3
    assert feed[2].position is not None
    assert feed[2].position > 2
