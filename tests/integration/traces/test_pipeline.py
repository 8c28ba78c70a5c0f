"""The trace store's write and read paths on every database, with Redis and RabbitMQ faults.

Records go buffer → flusher → hot tier + queue → persister → SQL; reads merge the hot tier
and SQL. Faults are real: Redis and RabbitMQ are reached through a proxy the test cuts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from casedesk.bootstrap import Container
from casedesk.store.models import TraceRow
from casedesk.store.trace_queue import Batch, InProcessTraceQueue, RabbitMQTraceQueue
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.traces import sql
from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.documents import Document, document
from casedesk.traces.flusher import TraceFlusher
from casedesk.traces.hot_memory import MemoryHotStore
from casedesk.traces.hot_redis import RedisHotStore
from casedesk.traces.persister import TracePersister, TraceRetention
from casedesk.traces.query import TraceQuery
from casedesk.traces.reader import TraceReader
from casedesk.traces.records import CallFailure, CapturedBody, TraceRecord
from tests.conftest import Tenants
from tests.support.proxy import CuttableProxy
from tests.support.services import drop_broker_names

WAIT = 10.0


def record(
    tenant_id: uuid.UUID,
    *,
    status: int | None = 200,
    url: str = "https://api.example.com/v1/items?page=1",
    execution_id: str | None = "exec-1",
    started_at: datetime | None = None,
) -> TraceRecord:
    return TraceRecord(
        id=uuid.uuid4(),
        trace_id=uuid.uuid4().hex,
        span_id=uuid.uuid4().hex[:16],
        parent_span_id=None,
        tenant_id=tenant_id,
        execution_id=execution_id,
        connection_id=None,
        connector="example",
        action="list_items",
        attempt=1,
        method="GET",
        url=url,
        request_headers=(("accept", "application/json"), ("authorization", "[REDACTED]")),
        request_body=None,
        status=status,
        response_headers=(("content-type", "application/json"),),
        response_body=CapturedBody(
            size=2, content_type="application/json", text="{}", truncated=False, sha256=None
        )
        if status is not None
        else None,
        started_at=started_at or datetime.now(UTC),
        duration_ms=12.5,
        ttfb_ms=10.0 if status is not None else None,
        error=None if status is not None else CallFailure(type="ConnectError", message="refused"),
    )


async def _count(container: Container, tenant_id: uuid.UUID) -> int:
    async with UnitOfWork(container.database, tenant_id) as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(TraceRow)) or 0)


async def _write(container: Container, docs: list[Document]) -> None:
    async with UnitOfWork(container.database) as uow:
        await uow.begin_write()
        await sql.write_batch(uow.session, docs)
        await uow.commit()


async def test_a_batch_written_twice_leaves_each_record_once(
    container: Container, tenants: Tenants
) -> None:
    first, second = (await tenants.create()).id, (await tenants.create()).id
    docs = [document(record(first)) for _ in range(30)] + [document(record(second))]
    await _write(container, docs)
    await _write(container, [*docs[10:], document(record(first))])
    assert await _count(container, first) == 31
    assert await _count(container, second) == 1


async def test_sql_pages_match_the_query_newest_first(
    container: Container, tenants: Tenants
) -> None:
    tenant = (await tenants.create()).id
    base = datetime.now(UTC).replace(microsecond=0)
    docs = [
        document(
            record(
                tenant,
                status=[200, 404, 503, None][i % 4],
                url=f"https://api.example.com/v1/{'orders' if i % 3 else 'items'}/{i}",
                execution_id=f"exec-{i % 2}",
                started_at=base - timedelta(seconds=i // 2),  # pairs share a start
            )
        )
        for i in range(40)
    ]
    await _write(container, docs)
    query = TraceQuery(tenant_id=tenant, execution_id="exec-1", url_contains="orders", limit=3)
    expected = sorted(
        (d for d in docs if query.matches(d)),
        key=lambda d: (d["started_at"], uuid.UUID(d["id"])),
        reverse=True,
    )
    seen: list[Document] = []
    async with UnitOfWork(container.database, tenant) as uow:
        while True:
            page = await sql.query(uow.session, query)
            seen += page
            if len(page) < query.limit:
                break
            last = page[-1]
            cursor = (datetime.fromisoformat(last["started_at"]), uuid.UUID(last["id"]))
            query = TraceQuery(
                tenant_id=tenant,
                execution_id="exec-1",
                url_contains="orders",
                limit=3,
                before=cursor,
            )
    assert [d["id"] for d in seen] == [d["id"] for d in expected]
    async with UnitOfWork(container.database, tenant) as uow:
        errors = await sql.query(uow.session, TraceQuery(tenant_id=tenant, status_class="error"))
        server = await sql.query(uow.session, TraceQuery(tenant_id=tenant, status_class="5xx"))
        like = await sql.query(uow.session, TraceQuery(tenant_id=tenant, url_contains="%"))
    assert {d["status"] for d in errors} == {None}
    assert len(errors) == 10
    assert {d["status"] for d in server} == {503}
    assert like == []  # % is a character here, not a wildcard


async def test_another_tenants_records_are_invisible(
    container: Container, tenants: Tenants
) -> None:
    mine, theirs = (await tenants.create()).id, (await tenants.create()).id
    doc = document(record(theirs))
    await _write(container, [doc])
    reader = TraceReader(container.database, MemoryHotStore(ttl=timedelta(hours=1)))
    assert await reader.get(mine, uuid.UUID(doc["id"])) is None
    assert await reader.query(TraceQuery(tenant_id=mine)) == []
    assert await reader.get(theirs, uuid.UUID(doc["id"])) == doc


async def test_reads_merge_the_hot_tier_and_sql_into_one_answer(
    container: Container, tenants: Tenants
) -> None:
    tenant = (await tenants.create()).id
    hot = MemoryHotStore(ttl=timedelta(hours=1))
    only_sql, both, only_hot = (document(record(tenant)) for _ in range(3))
    await _write(container, [only_sql, both])
    await hot.put_many([both, only_hot])
    reader = TraceReader(container.database, hot)
    merged = await reader.query(TraceQuery(tenant_id=tenant))
    assert sorted(d["id"] for d in merged) == sorted(d["id"] for d in (only_sql, both, only_hot))
    assert await reader.get(tenant, uuid.UUID(only_sql["id"])) == only_sql
    assert await reader.get(tenant, uuid.UUID(only_hot["id"])) == only_hot


@pytest.fixture
async def redis_proxy(redis_url: str) -> AsyncIterator[tuple[CuttableProxy, str]]:
    host_port = redis_url.split("//", 1)[1].split("/", 1)
    host, port = host_port[0].split(":")
    proxy = CuttableProxy(host, int(port))
    await proxy.start()
    yield proxy, f"redis://127.0.0.1:{proxy.port}/{host_port[1]}"
    await proxy.cut()


async def test_with_redis_down_reads_come_from_sql_and_recording_goes_on(
    container: Container, tenants: Tenants, redis_proxy: tuple[CuttableProxy, str]
) -> None:
    proxy, url = redis_proxy
    tenant = (await tenants.create()).id
    hot = RedisHotStore(url, namespace=f"test-{uuid.uuid4().hex[:8]}", ttl=timedelta(hours=1))
    queue = InProcessTraceQueue()
    persister = TracePersister(container.database, queue, rate=100_000)
    await persister.start()
    buffer = TraceBuffer(1000)
    flusher = TraceFlusher(buffer, hot, queue)
    reader = TraceReader(container.database, hot)
    try:
        buffer.append(before := record(tenant))
        await flusher.flush_once()
        assert await hot.get(tenant, before.id) is not None
        await proxy.cut()
        buffer.append(during := record(tenant))
        assert await flusher.flush_once() == 1  # the queue still took it
        for _ in range(100):
            if await _count(container, tenant) == 2:
                break
            await asyncio.sleep(0.05)
        found = await reader.query(TraceQuery(tenant_id=tenant))
        assert {d["id"] for d in found} == {str(before.id), str(during.id)}
        assert await reader.get(tenant, during.id) == document(during)
    finally:
        await queue.close()
        await hot.aclose()


async def test_with_the_broker_down_records_wait_in_the_buffer_then_flow(
    container: Container, tenants: Tenants, broker_url: str
) -> None:
    proxy = CuttableProxy("127.0.0.1", 5672)
    await proxy.start()
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    url = broker_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    queue = RabbitMQTraceQueue(url, namespace=namespace, confirm_timeout=2.0)
    tenant = (await tenants.create()).id
    buffer = TraceBuffer(1000)
    flusher = TraceFlusher(buffer, MemoryHotStore(ttl=timedelta(hours=1)), queue, batch_size=10)
    persister = TracePersister(container.database, queue, rate=100_000)
    try:
        await queue.start()
        await persister.start()
        await proxy.cut()
        for _ in range(25):
            buffer.append(record(tenant))
        assert await flusher.flush_once() == 0
        assert len(buffer) == 15  # one batch held by the flusher, the rest still waiting
        await proxy.restore()
        deadline = asyncio.get_running_loop().time() + WAIT
        while len(buffer) or flusher._held:
            assert asyncio.get_running_loop().time() < deadline, "records did not flow"
            if not await flusher.flush_once():
                await asyncio.sleep(0.2)
        while await _count(container, tenant) < 25:
            assert asyncio.get_running_loop().time() < deadline, "records were not persisted"
            await asyncio.sleep(0.1)
        assert await _count(container, tenant) == 25
        assert buffer.dropped == 0
    finally:
        await queue.close()
        await proxy.cut()
        await _delete_queue(broker_url, f"{namespace}.traces")


async def _delete_queue(broker_url: str, name: str) -> None:
    await drop_broker_names(broker_url, queues=[name])


async def test_a_persister_killed_mid_batch_loses_and_duplicates_nothing(
    container: Container, tenants: Tenants, broker_url: str
) -> None:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    tenant = (await tenants.create()).id
    batches = [[document(record(tenant)) for _ in range(50)] for _ in range(4)]
    publisher = RabbitMQTraceQueue(broker_url, namespace=namespace)
    dying = RabbitMQTraceQueue(broker_url, namespace=namespace)
    survivor = RabbitMQTraceQueue(broker_url, namespace=namespace)
    killed = asyncio.Event()
    persister = TracePersister(container.database, dying, rate=100_000, prefetch=1)

    async def write_then_die(batch: Batch) -> None:
        if killed.is_set():
            await asyncio.Event().wait()  # a dead process handles nothing more
        await persister.write(batch[:20])  # part of the batch committed, then it dies
        killed.set()
        await asyncio.Event().wait()

    try:
        await publisher.start()
        for batch in batches:
            await publisher.publish(batch)
        await dying.start()
        await dying.consume(write_then_die, prefetch=1)
        await asyncio.wait_for(killed.wait(), WAIT)
        assert dying._connection is not None
        await dying._connection.close()  # the process is gone: its unacked batch returns
        await survivor.start()
        await TracePersister(container.database, survivor, rate=100_000).start()
        deadline = asyncio.get_running_loop().time() + WAIT
        while await _count(container, tenant) < 200:
            assert asyncio.get_running_loop().time() < deadline, "batches were not redelivered"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        assert await _count(container, tenant) == 200
    finally:
        for queue in (publisher, survivor):
            await queue.close()
        await _delete_queue(broker_url, f"{namespace}.traces")


async def test_retention_deletes_only_old_records(container: Container, tenants: Tenants) -> None:
    tenant = (await tenants.create()).id
    old = document(record(tenant, started_at=datetime.now(UTC) - timedelta(days=8)))
    new = document(record(tenant))
    await _write(container, [old, new])
    purged = await TraceRetention(container.database, keep=timedelta(days=7), chunk=1).purge_once()
    assert purged >= 1
    async with UnitOfWork(container.database, tenant) as uow:
        assert await sql.get(uow.session, uuid.UUID(old["id"])) is None
        assert await sql.get(uow.session, uuid.UUID(new["id"])) == new
