"""Writers take turns in the process, readers never wait for them, and SQLite's planner reads a
case's tasks by the case's index.

On SQLite every writer of a process waits for its turn in the process (``WriterGate``) before
``BEGIN IMMEDIATE``; between processes SQLite's lock and busy timeout decide. The tests that
are about that gate run on SQLite only; those about what a unit of work promises on every
database (writers all finish, a failed one lets the next go, a long write blocks no read) run
on all three.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError

from casedesk.store import migrate
from casedesk.store.database import Database, WriterGate
from casedesk.store.models import Tenant
from casedesk.store.unit_of_work import UnitOfWork
from tests.support.backends import TEST_SECRET_KEY, ScratchDatabase

sqlite_only = pytest.mark.backends("sqlite")


def _tenant(label: str) -> Tenant:
    slug = f"w-{label}-{uuid.uuid4().hex[:10]}"
    return Tenant(slug=slug, name=slug, edition="standard")


async def _count(database: Database, prefix: str) -> int:
    async with UnitOfWork(database) as uow:
        found = await uow.session.scalar(
            select(func.count()).select_from(Tenant).where(Tenant.slug.like(f"{prefix}%"))
        )
    return int(found or 0)


@pytest.fixture
async def database(backend_url: str):  # type: ignore[no-untyped-def]
    """A database of its own with a small pool, as a busy server would exhaust it."""
    database = Database(backend_url, pool_size=2)
    yield database
    await database.dispose()


async def test_many_concurrent_writers_all_commit(database: Database) -> None:
    label = uuid.uuid4().hex[:6]

    async def write(n: int) -> None:
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            uow.tenants.add(_tenant(f"{label}-{n}"))
            await asyncio.sleep(0.002)
            await uow.commit()

    await asyncio.gather(*(write(n) for n in range(40)))
    assert await _count(database, f"w-{label}-") == 40


@sqlite_only
async def test_concurrent_writers_take_their_turns_in_order_of_arrival(
    database: Database,
) -> None:
    label = uuid.uuid4().hex[:6]
    arrived: list[int] = []
    turns: list[int] = []

    async def write(n: int) -> None:
        async with UnitOfWork(database) as uow:
            arrived.append(n)
            await uow.begin_write()
            turns.append(n)
            uow.tenants.add(_tenant(f"{label}-{n}"))
            await asyncio.sleep(0.005)  # a transaction that takes a while: others queue
            await uow.commit()

    tasks = []
    for n in range(24):
        tasks.append(asyncio.create_task(write(n)))
        await asyncio.sleep(0)  # each arrives before the next
    await asyncio.gather(*tasks)
    assert turns == arrived
    assert await _count(database, f"w-{label}-") == 24


async def test_a_long_write_blocks_no_reader(database: Database) -> None:
    label = uuid.uuid4().hex[:6]
    async with UnitOfWork(database) as uow:
        await uow.begin_write()
        uow.tenants.add(_tenant(f"{label}-committed"))
        await uow.commit()
    writing, finish = asyncio.Event(), asyncio.Event()

    async def long_write() -> None:
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            uow.tenants.add(_tenant(f"{label}-open"))
            await uow.flush()
            writing.set()
            await finish.wait()
            await uow.commit()

    writer = asyncio.create_task(long_write())
    await writing.wait()
    # More readers at once than the pool holds: none waits for the writer's connection.
    counts = await asyncio.wait_for(
        asyncio.gather(*(_count(database, f"w-{label}-") for _ in range(6))), timeout=5
    )
    assert counts == [1] * 6  # the open transaction is not seen
    finish.set()
    await writer
    assert await _count(database, f"w-{label}-") == 2


@sqlite_only
async def test_readers_do_not_wait_behind_queued_writers(database: Database) -> None:
    """Writers waiting for their turn hold no connection, so a pool of two still serves
    readers while twenty writers queue behind an open write transaction."""
    label = uuid.uuid4().hex[:6]
    writing, finish = asyncio.Event(), asyncio.Event()

    async def write(n: int) -> None:
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            uow.tenants.add(_tenant(f"{label}-{n}"))
            if n == 0:
                writing.set()
                await finish.wait()
            await uow.commit()

    first = asyncio.create_task(write(0))
    await writing.wait()
    queued = [asyncio.create_task(write(n)) for n in range(1, 21)]
    await asyncio.sleep(0.2)
    counts = await asyncio.wait_for(
        asyncio.gather(*(_count(database, f"w-{label}-") for _ in range(4))), timeout=3
    )
    assert counts == [0] * 4
    assert not any(task.done() for task in queued)
    finish.set()
    await asyncio.gather(first, *queued)
    assert await _count(database, f"w-{label}-") == 21


async def _writes_within(database: Database, seconds: float, label: str) -> None:
    async def write() -> None:
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            uow.tenants.add(_tenant(label))
            await uow.commit()

    await asyncio.wait_for(write(), timeout=seconds)


async def test_the_writer_turn_is_given_back_however_a_unit_of_work_ends(
    database: Database,
) -> None:
    label = uuid.uuid4().hex[:6]

    # It raises inside the unit of work.
    async def raising() -> None:
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            uow.tenants.add(_tenant(f"{label}-raised"))
            raise LookupError("boom")

    with pytest.raises(LookupError):
        await raising()
    await _writes_within(database, 5, f"{label}-after-raise")
    # It closes without committing.
    async with UnitOfWork(database) as uow:
        await uow.begin_write()
    await _writes_within(database, 5, f"{label}-after-close")
    # It rolls back, then writes again in the same unit of work.
    async with UnitOfWork(database) as uow:
        await uow.begin_write()
        await uow.rollback()
        await _writes_within(database, 5, f"{label}-after-rollback")
        await uow.begin_write()
        uow.tenants.add(_tenant(f"{label}-second"))
        await uow.commit()
    # Its commit fails (a slug taken), and the error leaves the unit of work.
    taken = _tenant(f"{label}-taken")
    async with UnitOfWork(database) as uow:
        await uow.begin_write()
        uow.tenants.add(taken)
        await uow.commit()

    async def failing_commit() -> None:
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            uow.tenants.add(Tenant(slug=taken.slug, name="again", edition="standard"))
            await uow.commit()

    with pytest.raises(IntegrityError):
        await failing_commit()
    await _writes_within(database, 5, f"{label}-after-failed-commit")
    assert await _count(database, f"w-{label}-") == 6


@sqlite_only
async def test_a_writer_cancelled_while_it_waits_or_writes_gives_its_turn_back(
    database: Database,
) -> None:
    label = uuid.uuid4().hex[:6]
    holding, finish = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            holding.set()
            await finish.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    waiter = asyncio.create_task(_writes_within(database, 30, f"{label}-cancelled"))
    await asyncio.sleep(0.05)
    waiter.cancel()
    holder.cancel()
    for task in (waiter, holder):
        with pytest.raises(asyncio.CancelledError):
            await task
    await _writes_within(database, 5, f"{label}-after")
    assert await _count(database, f"w-{label}-") == 1


@sqlite_only
async def test_a_writer_that_never_gets_its_turn_fails_like_sqlite_busy() -> None:
    gate = WriterGate(timeout=0.05)
    await gate.acquire()
    with pytest.raises(Exception, match="database is locked"):
        await gate.acquire()
    gate.release()
    await gate.acquire()  # the timed-out waiter took nothing
    gate.release()


@sqlite_only
async def test_a_writer_of_another_process_waits_for_the_lock_and_succeeds(
    database: Database, backend_url: str
) -> None:
    """A second engine stands for another process (``casedesk worker`` beside ``serve``): its
    gate is its own, so SQLite's write lock and busy timeout make it wait, and its checks
    (the migration state) read beside the open write."""
    label = uuid.uuid4().hex[:6]
    other = Database(backend_url, pool_size=1)
    holding, finish = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            uow.tenants.add(_tenant(f"{label}-first"))
            await uow.flush()
            holding.set()
            await finish.wait()
            await uow.commit()

    try:
        holder = asyncio.create_task(hold())
        await holding.wait()
        state = await asyncio.wait_for(migrate.migration_state(other.engine), timeout=5)
        assert state.up_to_date
        second = asyncio.create_task(_writes_within(other, 20, f"{label}-second"))
        await asyncio.sleep(0.5)
        assert not second.done()  # waiting in SQLite's busy handler, not failed
        finish.set()
        await holder
        await second
        assert await _count(other, f"w-{label}-") == 2
    finally:
        await other.dispose()


@sqlite_only
async def test_a_cases_tasks_are_read_by_the_case_index(
    empty_database: ScratchDatabase,
) -> None:
    """On a fresh database (no statistics), the planner must still take the case's index:
    the tenant's indexes would scan every task of the tenant."""
    database = Database(empty_database.url)
    statements: list[tuple[str, Any]] = []

    def seen(*args: Any) -> None:
        statements.append((args[2], args[3]))  # statement, parameters

    try:
        await migrate.upgrade(database.engine)
        sync_engine = database.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", seen)
        try:
            async with UnitOfWork(database, uuid.uuid4()) as uow:
                await uow.tasks.of_case(uuid.uuid4())
        finally:
            event.remove(sync_engine, "before_cursor_execute", seen)
        [(statement, parameters)] = [s for s in statements if "FROM tasks" in s[0]]
        async with database.engine.connect() as connection:
            analyzed = await connection.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
            )
            if analyzed.scalar():
                stats = await connection.exec_driver_sql(
                    "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'tasks'"
                )
                assert stats.scalar() == 0
            plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            details = " ".join(str(row[3]) for row in plan)
    finally:
        await database.dispose()
    assert "USING INDEX ix_tasks_case " in details, details


async def _tenant_statistics(database: Database) -> int:
    async with database.engine.connect() as connection:
        found = await connection.exec_driver_sql(
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'tenants'"
        )
        return int(found.scalar() or 0)


@sqlite_only
async def test_planner_statistics_are_written_on_demand_and_by_migrations(
    empty_database: ScratchDatabase,
) -> None:
    database = Database(empty_database.url)
    try:
        await migrate.upgrade(database.engine)
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            for n in range(30):
                uow.tenants.add(_tenant(f"stats-{n}"))
            await uow.commit()
        assert await _tenant_statistics(database) == 0  # analyzed while empty
        await database.refresh_statistics()
        assert await _tenant_statistics(database) > 0
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            await uow.session.execute(text("DELETE FROM sqlite_stat1"))
            await uow.commit()
        await migrate.upgrade(database.engine)  # at head already: it analyzes all the same
        assert await _tenant_statistics(database) > 0
    finally:
        await database.dispose()


async def test_refreshing_statistics_gives_the_writer_turn_back(
    database: Database,
) -> None:
    await database.refresh_statistics()  # beyond SQLite: nothing to do
    await _writes_within(database, 5, f"{uuid.uuid4().hex[:6]}-after-refresh")


@sqlite_only
async def test_a_starting_worker_fails_no_write_of_the_server(
    empty_database: ScratchDatabase,
) -> None:
    """``casedesk worker`` starting beside a busy server (its schema check, its statistics
    refresh, its first relay and job rounds) makes no write of the server fail."""
    url = empty_database.url
    database = Database(url)
    await migrate.upgrade(database.engine)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEDESK_")}
    env.update(
        CASEDESK_DATABASE_URL=url, CASEDESK_SECRET_KEY=TEST_SECRET_KEY, CASEDESK_LOG_LEVEL="info"
    )
    label = uuid.uuid4().hex[:6]
    written = 0
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def keep_writing(n: int) -> None:
        nonlocal written
        while not stop.is_set():
            try:
                await _writes_within(database, 30, f"{label}-{n}-{written}")
                written += 1
            except Exception as exc:  # counted: the test fails on any
                failures.append(exc)

    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "casedesk",
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    writers = [asyncio.create_task(keep_writing(n)) for n in range(4)]
    try:
        assert worker.stdout is not None
        output = b""
        async with asyncio.timeout(60):
            while b"casedesk worker running" not in output:
                line = await worker.stdout.readline()
                assert line, output.decode()
                output += line
        await asyncio.sleep(1)  # its first rounds beside the writers
    finally:
        stop.set()
        await asyncio.gather(*writers)
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), timeout=30)
        await database.dispose()
    assert failures == []
    assert written > 10
    assert b"not refreshed" not in output
