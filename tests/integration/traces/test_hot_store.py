"""The hot tier of the trace store, in process memory and against a real Redis.

The behaviour tests run on both implementations. The Redis layout (expiries, trimming, the
bounded stream, index entries outliving their record), an unreachable Redis and the memory
store's capacity have tests of their own. Stores read a clock the tests move by hand;
Redis expiries run on its own clock, so the tests that need them also wait for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from casedesk.kit.errors import InvalidInput
from casedesk.traces.documents import Document, document
from casedesk.traces.hot import HotStore, HotStoreUnavailable, hot_store
from casedesk.traces.hot_memory import MemoryHotStore
from casedesk.traces.hot_redis import RedisHotStore
from casedesk.traces.query import TraceQuery, newest_first
from casedesk.traces.records import CallFailure, CapturedBody, TraceRecord
from tests.support.services import require_redis

HOUR = timedelta(hours=1)
# Long enough for a Redis tail to have read its starting position before a put.
SETTLE_S = 0.2


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def trace(
    tenant: uuid.UUID,
    started_at: datetime,
    *,
    execution_id: str | None = None,
    connection_id: uuid.UUID | None = None,
    status: int | None = 200,
    url: str = "https://api.example.com/v1/orders",
    record_id: uuid.UUID | None = None,
) -> Document:
    failed = status is None
    return document(
        TraceRecord(
            id=record_id or uuid.uuid4(),
            trace_id=uuid.uuid4().hex,
            span_id=uuid.uuid4().hex[:16],
            parent_span_id=None,
            tenant_id=tenant,
            execution_id=execution_id,
            connection_id=connection_id,
            connector="acme",
            action="list_orders",
            attempt=1,
            method="GET",
            url=url,
            request_headers=(("accept", "application/json"),),
            request_body=None,
            status=status,
            response_headers=() if failed else (("content-type", "application/json"),),
            response_body=None
            if failed
            else CapturedBody(
                size=11,
                content_type="application/json",
                text='{"ok": true}',
                truncated=False,
                sha256=None,
            ),
            started_at=started_at,
            duration_ms=12.5,
            ttfb_ms=None if failed else 10.0,
            error=CallFailure(type="ConnectTimeout", message="timed out") if failed else None,
        )
    )


def ids(docs: list[Document]) -> list[str]:
    return [doc["id"] for doc in docs]


def cursor(doc: Document) -> tuple[datetime, uuid.UUID]:
    return datetime.fromisoformat(doc["started_at"]), uuid.UUID(doc["id"])


@dataclass
class Stores:
    """Opens stores of one kind; every Redis key they write is deleted afterwards."""

    kind: str
    clock: Clock
    redis_url: str | None
    namespace: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:12]}")
    opened: list[HotStore] = field(default_factory=list)

    def open(self, *, ttl: timedelta = HOUR, **options: Any) -> HotStore:
        store: HotStore
        if self.redis_url is None:
            store = MemoryHotStore(ttl=ttl, clock=self.clock, **options)
        else:
            store = RedisHotStore(
                self.redis_url, namespace=self.namespace, ttl=ttl, clock=self.clock, **options
            )
        self.opened.append(store)
        return store

    async def elapse(self, seconds: float) -> None:
        """Move the stores' clock, and let Redis's own clock run as far."""
        self.clock.advance(seconds)
        if self.redis_url is not None:
            await asyncio.sleep(seconds)

    async def close(self) -> None:
        for store in self.opened:
            await store.aclose()
        if self.redis_url is None:
            return
        client = aioredis.Redis.from_url(self.redis_url)
        keys = [key async for key in client.scan_iter(match=f"{self.namespace}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@contextlib.asynccontextmanager
async def stores_of(kind: str) -> AsyncIterator[Stores]:
    redis_url = await require_redis() if kind == "redis" else None
    stores = Stores(kind=kind, clock=Clock(), redis_url=redis_url)
    try:
        yield stores
    finally:
        await stores.close()


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    async with stores_of(request.param) as opened:
        yield opened


@pytest.fixture
async def redis_stores() -> AsyncIterator[Stores]:
    async with stores_of("redis") as opened:
        yield opened


@pytest.fixture
def store(stores: Stores) -> HotStore:
    return stores.open()


@pytest.fixture
def clock(stores: Stores) -> Clock:
    return stores.clock


@pytest.fixture
def tenant() -> uuid.UUID:
    return uuid.uuid4()


class Follower:
    """Reads a tail in a background task, so a test can wait for each item in turn."""

    def __init__(self, tail: AsyncIterator[tuple[str, Document]]) -> None:
        self.received: asyncio.Queue[tuple[str, Document]] = asyncio.Queue()
        self._task = asyncio.create_task(self._read(tail))

    async def _read(self, tail: AsyncIterator[tuple[str, Document]]) -> None:
        async for item in tail:
            await self.received.put(item)

    async def next(self) -> tuple[str, Document]:
        getting = asyncio.ensure_future(self.received.get())
        await asyncio.wait({getting, self._task}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        if getting.done():
            return getting.result()
        getting.cancel()
        if self._task.done():
            raise self._task.exception() or AssertionError("the tail ended")
        raise AssertionError("nothing arrived on the tail within 5 s")

    async def assert_nothing_more(self) -> None:
        await asyncio.sleep(SETTLE_S)
        assert self.received.empty(), f"unexpected: {self.received.get_nowait()[1]['id']}"

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def following(tail: AsyncIterator[tuple[str, Document]]) -> AsyncIterator[Follower]:
    follower = Follower(tail)
    await asyncio.sleep(SETTLE_S)
    try:
        yield follower
    finally:
        await follower.stop()


# --- put and get ---------------------------------------------------------------------------


async def test_a_document_put_is_got_back_whole(
    store: HotStore, clock: Clock, tenant: uuid.UUID
) -> None:
    doc = trace(tenant, clock.now, execution_id="exe-1", connection_id=uuid.uuid4())

    await store.put_many([doc])

    assert await store.get(tenant, uuid.UUID(doc["id"])) == doc


async def test_get_is_none_for_an_id_never_put(store: HotStore, tenant: uuid.UUID) -> None:
    assert await store.get(tenant, uuid.uuid4()) is None


async def test_putting_a_document_again_keeps_one(
    store: HotStore, clock: Clock, tenant: uuid.UUID
) -> None:
    doc = trace(tenant, clock.now, execution_id="exe-1", connection_id=uuid.uuid4())

    await store.put_many([doc, doc])
    await store.put_many([doc])

    assert ids(await store.query(TraceQuery(tenant_id=tenant))) == [doc["id"]]
    assert ids(await store.query(TraceQuery(tenant_id=tenant, execution_id="exe-1"))) == [doc["id"]]


async def test_another_tenants_documents_are_neither_got_nor_queried(
    store: HotStore, clock: Clock
) -> None:
    ours, theirs = uuid.uuid4(), uuid.uuid4()
    shared_connection = uuid.uuid4()
    mine = [
        trace(
            ours,
            clock.now - timedelta(seconds=i),
            execution_id="exe",
            connection_id=shared_connection,
        )
        for i in range(3)
    ]
    others = [
        trace(
            theirs,
            clock.now - timedelta(seconds=i),
            execution_id="exe",
            connection_id=shared_connection,
        )
        for i in range(3)
    ]

    await store.put_many([*mine, *others])

    assert await store.get(ours, uuid.UUID(others[0]["id"])) is None
    assert await store.get(theirs, uuid.UUID(others[0]["id"])) == others[0]
    assert ids(await store.query(TraceQuery(tenant_id=ours))) == ids(mine)
    assert ids(await store.query(TraceQuery(tenant_id=ours, execution_id="exe"))) == ids(mine)
    by_connection = TraceQuery(tenant_id=theirs, connection_id=shared_connection)
    assert ids(await store.query(by_connection)) == ids(others)


# --- query -----------------------------------------------------------------------------------


@dataclass
class Sample:
    """Five calls ten seconds apart, oldest first, across two executions and connections."""

    tenant: uuid.UUID
    start: datetime
    first: uuid.UUID
    second: uuid.UUID
    docs: dict[str, Document]

    def at(self, seconds: int) -> datetime:
        return self.start + timedelta(seconds=seconds)


def sample(tenant: uuid.UUID, clock: Clock) -> Sample:
    start = clock.now - timedelta(minutes=5)
    first, second = uuid.uuid4(), uuid.uuid4()
    base = "https://api.example.com/v1"
    docs = {
        "a": trace(tenant, start, execution_id="e1", connection_id=first, url=f"{base}/orders"),
        "b": trace(
            tenant,
            start + timedelta(seconds=10),
            execution_id="e1",
            connection_id=second,
            status=404,
            url=f"{base}/customers",
        ),
        "c": trace(
            tenant,
            start + timedelta(seconds=20),
            execution_id="e2",
            connection_id=first,
            status=500,
            url=f"{base}/orders/7",
        ),
        "d": trace(tenant, start + timedelta(seconds=30), status=None, url=f"{base}/orders"),
        "e": trace(
            tenant,
            start + timedelta(seconds=40),
            execution_id="e2",
            connection_id=first,
            status=302,
            url=f"{base}/refunds",
        ),
    }
    return Sample(tenant, start, first, second, docs)


FILTERS: dict[str, tuple[Callable[[Sample], dict[str, Any]], str]] = {
    "execution": (lambda s: {"execution_id": "e1"}, "ba"),
    "connection": (lambda s: {"connection_id": s.first}, "eca"),
    "status 4xx": (lambda s: {"status_class": "4xx"}, "b"),
    "status 5xx": (lambda s: {"status_class": "5xx"}, "c"),
    "no response": (lambda s: {"status_class": "error"}, "d"),
    "since": (lambda s: {"since": s.at(20)}, "edc"),
    "until": (lambda s: {"until": s.at(20)}, "ba"),
    "since and until": (lambda s: {"since": s.at(10), "until": s.at(40)}, "dcb"),
    "url": (lambda s: {"url_contains": "/orders"}, "dca"),
    "execution and status": (lambda s: {"execution_id": "e2", "status_class": "5xx"}, "c"),
    "connection and url": (lambda s: {"connection_id": s.first, "url_contains": "/orders"}, "ca"),
}


@pytest.mark.parametrize("name", FILTERS)
async def test_each_filter_narrows_the_answer(
    store: HotStore, clock: Clock, tenant: uuid.UUID, name: str
) -> None:
    given = sample(tenant, clock)
    await store.put_many(list(given.docs.values()))
    criteria, expected = FILTERS[name]

    answer = await store.query(TraceQuery(tenant_id=tenant, **criteria(given)))

    assert ids(answer) == [given.docs[key]["id"] for key in expected]


async def test_answers_are_newest_first_and_at_most_the_limit(
    store: HotStore, clock: Clock, tenant: uuid.UUID
) -> None:
    docs = [trace(tenant, clock.now - timedelta(seconds=s)) for s in (5, 1, 9, 3, 7, 2, 8)]
    await store.put_many(docs)

    answer = await store.query(TraceQuery(tenant_id=tenant, limit=4))

    assert ids(answer) == ids(newest_first(docs))[:4]


def with_cursor(query: TraceQuery, doc: Document) -> TraceQuery:
    return TraceQuery(
        tenant_id=query.tenant_id,
        execution_id=query.execution_id,
        connection_id=query.connection_id,
        status_class=query.status_class,
        since=query.since,
        until=query.until,
        url_contains=query.url_contains,
        before=cursor(doc),
        limit=query.limit,
    )


async def pages_of(store: HotStore, query: TraceQuery) -> list[list[str]]:
    pages: list[list[str]] = []
    page = await store.query(query)
    while page:
        pages.append(ids(page))
        page = await store.query(with_cursor(query, page[-1]))
    return pages


async def test_pages_continue_strictly_before_the_cursor_across_equal_start_times(
    store: HotStore, clock: Clock, tenant: uuid.UUID
) -> None:
    instant = clock.now - timedelta(minutes=1)
    docs = [
        trace(tenant, instant + timedelta(seconds=1)),
        *(trace(tenant, instant) for _ in range(7)),
        trace(tenant, instant - timedelta(seconds=1)),
    ]
    await store.put_many(docs)

    pages = await pages_of(store, TraceQuery(tenant_id=tenant, limit=2))

    assert [len(page) for page in pages] == [2, 2, 2, 2, 1]
    assert [i for page in pages for i in page] == ids(newest_first(docs))


async def test_a_page_fills_past_many_non_matching_candidates(
    store: HotStore, clock: Clock, tenant: uuid.UUID
) -> None:
    # Four groups of 150 calls sharing a start time, so reading the index in chunks has to
    # step through ties; one call in 97 matches.
    start = clock.now - timedelta(minutes=10)
    docs = [
        trace(
            tenant,
            start + timedelta(seconds=i // 150),
            url="https://api.example.com/match" if i % 97 == 0 else "https://api.example.com/other",
        )
        for i in range(600)
    ]
    await store.put_many(docs)
    matching = newest_first([doc for doc in docs if "/match" in doc["url"]])

    pages = await pages_of(store, TraceQuery(tenant_id=tenant, url_contains="/match", limit=3))

    assert pages == [ids(matching[:3]), ids(matching[3:6]), ids(matching[6:])]


async def test_an_unfiltered_walk_through_many_ties_sees_every_document_once(
    store: HotStore, clock: Clock, tenant: uuid.UUID
) -> None:
    instant = clock.now - timedelta(minutes=1)
    docs = [trace(tenant, instant + timedelta(seconds=i // 200)) for i in range(400)]
    await store.put_many(docs)

    pages = await pages_of(store, TraceQuery(tenant_id=tenant, limit=150))

    assert [i for page in pages for i in page] == ids(newest_first(docs))


# --- time to live ----------------------------------------------------------------------------


async def test_a_document_expires_a_ttl_after_it_was_put(stores: Stores, tenant: uuid.UUID) -> None:
    store = stores.open(ttl=timedelta(seconds=1))
    # Started a little after the put by the store's clock, so only the time since the put,
    # not the start time, can take it out of the hot window.
    doc = trace(tenant, stores.clock.now + timedelta(seconds=0.5), execution_id="exe")
    await store.put_many([doc])
    assert await store.get(tenant, uuid.UUID(doc["id"])) == doc

    await stores.elapse(1.2)

    assert await store.get(tenant, uuid.UUID(doc["id"])) is None
    assert await store.query(TraceQuery(tenant_id=tenant)) == []
    assert await store.query(TraceQuery(tenant_id=tenant, execution_id="exe")) == []


async def test_a_document_leaves_once_it_started_more_than_a_ttl_ago(
    store: HotStore, stores: Stores, clock: Clock, tenant: uuid.UUID
) -> None:
    doc = trace(tenant, clock.now - HOUR + timedelta(seconds=1), execution_id="exe")
    await store.put_many([doc])
    assert ids(await store.query(TraceQuery(tenant_id=tenant))) == [doc["id"]]

    clock.advance(2)

    assert await store.get(tenant, uuid.UUID(doc["id"])) is None
    assert await store.query(TraceQuery(tenant_id=tenant)) == []
    assert await store.query(TraceQuery(tenant_id=tenant, execution_id="exe")) == []


async def test_a_document_that_started_before_the_hot_window_is_not_kept(
    store: HotStore, clock: Clock, tenant: uuid.UUID
) -> None:
    stale = trace(tenant, clock.now - 2 * HOUR)
    fresh = trace(tenant, clock.now)

    await store.put_many([stale, fresh])

    assert await store.get(tenant, uuid.UUID(stale["id"])) is None
    assert ids(await store.query(TraceQuery(tenant_id=tenant))) == [fresh["id"]]


# --- live tail -------------------------------------------------------------------------------


async def test_a_tail_receives_what_is_put_after_it_started_and_nothing_before(
    store: HotStore, clock: Clock, tenant: uuid.UUID
) -> None:
    earlier, later = trace(tenant, clock.now), trace(tenant, clock.now)
    await store.put_many([earlier])

    async with following(store.tail(tenant)) as tail:
        await store.put_many([later])

        _, received = await tail.next()
        assert received == later
        await tail.assert_nothing_more()


async def test_a_tail_resumes_after_a_position_it_gave(
    store: HotStore, clock: Clock, tenant: uuid.UUID
) -> None:
    docs = [trace(tenant, clock.now) for _ in range(3)]
    async with following(store.tail(tenant)) as tail:
        await store.put_many(docs)
        first_position, _ = await tail.next()

    async with following(store.tail(tenant, after=first_position)) as resumed:
        received = [(await resumed.next())[1] for _ in range(2)]
        await resumed.assert_nothing_more()

    assert received == docs[1:]


async def test_a_tail_gives_positions_that_resume_where_it_stopped(
    store: HotStore, clock: Clock, tenant: uuid.UUID
) -> None:
    async with following(store.tail(tenant)) as tail:
        await store.put_many([trace(tenant, clock.now)])
        position, _ = await tail.next()
    missed = trace(tenant, clock.now)
    await store.put_many([missed])

    async with following(store.tail(tenant, after=position)) as resumed:
        assert (await resumed.next())[1] == missed


async def test_a_tail_follows_only_its_tenant(
    store: HotStore, clock: Clock, tenant: uuid.UUID
) -> None:
    ours = trace(tenant, clock.now)
    async with following(store.tail(tenant)) as tail:
        await store.put_many([trace(uuid.uuid4(), clock.now), ours, trace(uuid.uuid4(), clock.now)])

        assert (await tail.next())[1] == ours
        await tail.assert_nothing_more()


@pytest.mark.parametrize("position", ["", "latest", "12-x", "1-2-3", "$", "-1-0"])
async def test_a_tail_refuses_a_position_it_never_gives(
    store: HotStore, tenant: uuid.UUID, position: str
) -> None:
    with pytest.raises(InvalidInput):
        store.tail(tenant, after=position)


async def test_a_store_answers_a_ping(store: HotStore) -> None:
    assert await store.ping() is True


# --- Redis -----------------------------------------------------------------------------------


def _epoch_us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


async def test_redis_keeps_each_record_with_its_indexes_and_tail_entry_all_expiring(
    redis_stores: Stores, tenant: uuid.UUID
) -> None:
    store = redis_stores.open()
    connection = uuid.uuid4()
    doc = trace(tenant, redis_stores.clock.now, execution_id="exe-9", connection_id=connection)
    await store.put_many([doc])

    ns = redis_stores.namespace
    client = aioredis.Redis.from_url(str(redis_stores.redis_url))
    try:
        record = f"{ns}:trace:{tenant}:{doc['id']}"
        indexes = [
            f"{ns}:traces:{tenant}",
            f"{ns}:traces:{tenant}:exec:exe-9",
            f"{ns}:traces:{tenant}:conn:{connection}",
        ]
        stream = f"{ns}:tail:{tenant}"
        assert orjson.loads(await client.get(record)) == doc
        for index in indexes:
            assert await client.zrange(index, 0, -1, withscores=True) == [
                (doc["id"].encode(), float(_epoch_us(redis_stores.clock.now)))
            ]
        ((_, fields),) = await client.xrange(stream)
        assert orjson.loads(fields[b"doc"]) == doc
        for key in [record, *indexes, stream]:
            assert 0 < await client.pttl(key) <= HOUR // timedelta(milliseconds=1), key
    finally:
        await client.aclose()


async def test_redis_trims_index_members_that_left_the_hot_window(
    redis_stores: Stores, tenant: uuid.UUID
) -> None:
    store = redis_stores.open()
    clock = redis_stores.clock
    connection = uuid.uuid4()
    old = trace(tenant, clock.now, execution_id="exe", connection_id=connection)
    await store.put_many([old])
    clock.advance(HOUR.total_seconds() + 1)
    new = trace(tenant, clock.now, execution_id="exe", connection_id=connection)

    await store.put_many([new])

    ns = redis_stores.namespace
    client = aioredis.Redis.from_url(str(redis_stores.redis_url))
    try:
        for index in ("", ":exec:exe", f":conn:{connection}"):
            assert await client.zrange(f"{ns}:traces:{tenant}{index}", 0, -1) == [
                new["id"].encode()
            ]
        # The record itself is still there: the index was trimmed, not emptied by expiry.
        assert await client.exists(f"{ns}:trace:{tenant}:{old['id']}") == 1
    finally:
        await client.aclose()


async def test_redis_caps_the_tail_stream_near_its_length(
    redis_stores: Stores, tenant: uuid.UUID
) -> None:
    store = redis_stores.open(stream_length=10)

    await store.put_many([trace(tenant, redis_stores.clock.now) for _ in range(1_000)])

    client = aioredis.Redis.from_url(str(redis_stores.redis_url))
    try:
        # MAXLEN ~ trims whole stream nodes (100 entries by default), never below the cap.
        assert 10 <= await client.xlen(f"{redis_stores.namespace}:tail:{tenant}") <= 110
    finally:
        await client.aclose()


async def test_redis_skips_index_members_whose_record_expired_and_still_fills_the_page(
    redis_stores: Stores, tenant: uuid.UUID
) -> None:
    store = redis_stores.open()
    docs = newest_first(
        [trace(tenant, redis_stores.clock.now - timedelta(seconds=s)) for s in range(10)]
    )
    await store.put_many(docs)
    client = aioredis.Redis.from_url(str(redis_stores.redis_url))
    try:
        await client.delete(
            *(f"{redis_stores.namespace}:trace:{tenant}:{d['id']}" for d in docs[:3])
        )
    finally:
        await client.aclose()

    answer = await store.query(TraceQuery(tenant_id=tenant, limit=5))

    assert ids(answer) == ids(docs[3:8])


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_redis_is_reported_as_hot_store_unavailable(
    closed_port: int, tenant: uuid.UUID
) -> None:
    store = RedisHotStore(f"redis://127.0.0.1:{closed_port}/0")
    try:
        assert await store.ping() is False
        with pytest.raises(HotStoreUnavailable):
            await store.put_many([trace(tenant, datetime.now(UTC))])
        with pytest.raises(HotStoreUnavailable):
            await store.get(tenant, uuid.uuid4())
        with pytest.raises(HotStoreUnavailable):
            await store.query(TraceQuery(tenant_id=tenant))
        with pytest.raises(HotStoreUnavailable):
            await anext(store.tail(tenant))
    finally:
        await store.aclose()


# --- memory ----------------------------------------------------------------------------------


async def test_memory_store_evicts_a_tenants_oldest_documents_beyond_its_capacity() -> None:
    clock = Clock()
    store = MemoryHotStore(capacity_per_tenant=3, clock=clock)
    busy, quiet = uuid.uuid4(), uuid.uuid4()
    busy_docs = [trace(busy, clock.now - timedelta(seconds=s)) for s in (4, 2, 0, 3, 1)]
    quiet_docs = [trace(quiet, clock.now - timedelta(seconds=s)) for s in (1, 0)]

    await store.put_many([*busy_docs, *quiet_docs])

    newest = newest_first(busy_docs)
    assert ids(await store.query(TraceQuery(tenant_id=busy))) == ids(newest[:3])
    assert await store.get(busy, uuid.UUID(newest[-1]["id"])) is None
    assert ids(await store.query(TraceQuery(tenant_id=quiet))) == ids(newest_first(quiet_docs))


# --- factory ---------------------------------------------------------------------------------


async def test_the_factory_picks_redis_when_configured_and_memory_otherwise() -> None:
    embedded = hot_store(None, namespace="casedesk", ttl=HOUR)
    served = hot_store("redis://127.0.0.1:6379/15", namespace="casedesk", ttl=HOUR)

    assert isinstance(embedded, MemoryHotStore)
    assert isinstance(served, RedisHotStore)
    await embedded.aclose()
    await served.aclose()
