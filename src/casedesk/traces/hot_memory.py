"""The hot tier in process memory, for the embedded mode (one process, no Redis).

Each tenant has a shelf: its documents by id (kept as JSON, so readers get their own copy,
as from Redis), a timeline of index keys sorted by (started_at, id), and the same per
execution and per connection. A shelf holds at most ``capacity_per_tenant`` documents, the
oldest making room for new ones. Documents leave ``ttl`` after they were put, and as soon
as they started more than ``ttl`` ago.

Each tenant also has a feed: the last ``stream_length`` documents put, with their positions,
and an event that wakes the tail readers when a batch arrives.
"""

from __future__ import annotations

import asyncio
import uuid
from bisect import bisect_left, insort
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from casedesk.kit.clock import utcnow
from casedesk.traces.documents import Document
from casedesk.traces.hot import (
    IndexKey,
    Position,
    epoch_us,
    format_position,
    index_key,
    key_range,
    parse_position,
)
from casedesk.traces.query import TraceQuery


@dataclass(frozen=True, slots=True)
class _Held:
    payload: bytes
    key: IndexKey
    execution_id: str | None
    connection_id: str | None
    expires_at: datetime


def _discard(keys: list[IndexKey], key: IndexKey) -> None:
    at = bisect_left(keys, key)
    if at < len(keys) and keys[at] == key:
        del keys[at]


class _Shelf:
    """One tenant's documents and their indexes."""

    def __init__(self) -> None:
        self.held: dict[str, _Held] = {}
        self.timeline: list[IndexKey] = []
        self.by_execution: dict[str, list[IndexKey]] = {}
        self.by_connection: dict[str, list[IndexKey]] = {}

    def add(self, held: _Held) -> None:
        self.held[held.key[1]] = held
        insort(self.timeline, held.key)
        if held.execution_id is not None:
            insort(self.by_execution.setdefault(held.execution_id, []), held.key)
        if held.connection_id is not None:
            insort(self.by_connection.setdefault(held.connection_id, []), held.key)

    def remove(self, record_id: str) -> None:
        held = self.held.pop(record_id)
        _discard(self.timeline, held.key)
        if held.execution_id is not None:
            self._discard_from(self.by_execution, held.execution_id, held.key)
        if held.connection_id is not None:
            self._discard_from(self.by_connection, held.connection_id, held.key)

    @staticmethod
    def _discard_from(indexes: dict[str, list[IndexKey]], name: str, key: IndexKey) -> None:
        keys = indexes[name]
        _discard(keys, key)
        if not keys:
            del indexes[name]

    def drop_oldest(self, keep: int) -> None:
        while len(self.timeline) > keep:
            self.remove(self.timeline[0][1])

    def drop_started_before(self, lowest: IndexKey) -> None:
        while self.timeline and self.timeline[0] < lowest:
            self.remove(self.timeline[0][1])

    def index_for(self, query: TraceQuery) -> list[IndexKey]:
        if query.execution_id is not None:
            return self.by_execution.get(query.execution_id, [])
        if query.connection_id is not None:
            return self.by_connection.get(str(query.connection_id), [])
        return self.timeline


class _Feed:
    """One tenant's recent documents in the order they were put, for the live tail."""

    def __init__(self, length: int) -> None:
        self.entries: deque[tuple[Position, bytes]] = deque(maxlen=length)
        self.last: Position = (0, 0)
        self._arrived = asyncio.Event()

    def append(self, position: Position, payload: bytes) -> None:
        self.entries.append((position, payload))
        self.last = position

    def announce(self) -> None:
        # Readers wait on the event they saw; a fresh one is armed for the next batch.
        self._arrived.set()
        self._arrived = asyncio.Event()

    def since(self, position: Position) -> list[tuple[Position, bytes]]:
        newer = []
        for entry in reversed(self.entries):
            if entry[0] <= position:
                break
            newer.append(entry)
        newer.reverse()
        return newer

    async def arrival(self) -> None:
        await self._arrived.wait()


class MemoryHotStore:
    def __init__(
        self,
        *,
        ttl: timedelta = timedelta(hours=24),
        capacity_per_tenant: int = 100_000,
        stream_length: int = 10_000,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if capacity_per_tenant < 1:
            raise ValueError(
                f"a tenant's shelf holds at least one trace, not {capacity_per_tenant}"
            )
        self._ttl = ttl
        self._capacity = capacity_per_tenant
        self._stream_length = stream_length
        self._clock = clock
        self._shelves: dict[str, _Shelf] = {}
        self._feeds: dict[str, _Feed] = {}
        # (expires_at, tenant, id) in the order put; a constant ttl keeps it sorted.
        self._expiries: deque[tuple[datetime, str, str]] = deque()
        self._last_position: Position = (0, 0)

    async def put_many(self, docs: Sequence[Document]) -> None:
        now = self._clock()
        self._forget_expired(now)
        lowest = (epoch_us(now - self._ttl), "")
        touched: set[str] = set()
        for doc in docs:
            key = index_key(doc)
            tenant = doc["tenant_id"]
            shelf = self._shelves.setdefault(tenant, _Shelf())
            if key < lowest or key[1] in shelf.held:
                continue
            held = self._hold(doc, key, now + self._ttl)
            shelf.add(held)
            shelf.drop_oldest(keep=self._capacity)
            self._expiries.append((held.expires_at, tenant, key[1]))
            self._feed(tenant).append(self._next_position(now), held.payload)
            touched.add(tenant)
        for tenant in touched:
            self._feeds[tenant].announce()

    async def get(self, tenant_id: uuid.UUID, trace_record_id: uuid.UUID) -> Document | None:
        held = self._current_shelf(tenant_id).held.get(str(trace_record_id))
        return None if held is None else orjson.loads(held.payload)

    async def query(self, query: TraceQuery) -> list[Document]:
        shelf = self._current_shelf(query.tenant_id)
        bounds = key_range(query, self._clock() - self._ttl)
        if query.limit < 1 or bounds.empty:
            return []
        keys = shelf.index_for(query)
        top = len(keys) if bounds.below is None else bisect_left(keys, bounds.below)
        bottom = bisect_left(keys, bounds.lowest)
        found: list[Document] = []
        for at in range(top - 1, bottom - 1, -1):
            doc = orjson.loads(shelf.held[keys[at][1]].payload)
            if query.matches(doc):
                found.append(doc)
                if len(found) == query.limit:
                    break
        return found

    def tail(
        self, tenant_id: uuid.UUID, *, after: str | None = None
    ) -> AsyncGenerator[tuple[str, Document], None]:
        feed = self._feed(str(tenant_id))
        # "From now" is taken here, not when the reader first asks, so nothing put in between
        # is missed.
        start = feed.last if after is None else parse_position(after)
        return self._follow(feed, start)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._shelves.clear()
        self._expiries.clear()

    @staticmethod
    async def _follow(
        feed: _Feed, position: Position
    ) -> AsyncGenerator[tuple[str, Document], None]:
        while True:
            newer = feed.since(position)
            if not newer:
                await feed.arrival()
                continue
            for position, payload in newer:
                yield format_position(position), orjson.loads(payload)

    def _hold(self, doc: Document, key: IndexKey, expires_at: datetime) -> _Held:
        return _Held(
            payload=orjson.dumps(doc),
            key=key,
            execution_id=doc["execution_id"],
            connection_id=doc["connection_id"],
            expires_at=expires_at,
        )

    def _feed(self, tenant: str) -> _Feed:
        return self._feeds.setdefault(tenant, _Feed(self._stream_length))

    def _current_shelf(self, tenant_id: uuid.UUID) -> _Shelf:
        """The tenant's shelf with everything no longer hot taken off."""
        now = self._clock()
        self._forget_expired(now)
        shelf = self._shelves.get(str(tenant_id), _Shelf())
        shelf.drop_started_before((epoch_us(now - self._ttl), ""))
        return shelf

    def _forget_expired(self, now: datetime) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            expires_at, tenant, record_id = self._expiries.popleft()
            shelf = self._shelves[tenant]
            held = shelf.held.get(record_id)
            # The same id may have been evicted and put again since; that one stays.
            if held is not None and held.expires_at == expires_at:
                shelf.remove(record_id)

    def _next_position(self, now: datetime) -> Position:
        milliseconds = epoch_us(now) // 1000
        last_ms, last_sequence = self._last_position
        position = (last_ms, last_sequence + 1) if milliseconds <= last_ms else (milliseconds, 0)
        self._last_position = position
        return position
