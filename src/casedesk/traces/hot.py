"""The hot tier of the trace store: the last hours of trace records, queryable at once.

The flusher puts batches of documents here; readers ask for one record, for a filtered page
of records, or for a live tail of new ones. Two implementations keep the same contract:
``RedisHotStore`` (``hot_redis``) when Redis is configured, ``MemoryHotStore``
(``hot_memory``) in the embedded mode.

A document is hot while less than ``ttl`` has passed both since it was put and since it
started; older ones are found in SQL. Order is the one every tier shares: newest first by
(started_at, id). Tail positions have the form ``<milliseconds>-<sequence>`` (a Redis stream
id), so they can be sent as SSE ``id:`` and come back as ``Last-Event-ID``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from casedesk.kit.errors import InvalidInput
from casedesk.traces.documents import Document
from casedesk.traces.query import TraceQuery

IndexKey = tuple[int, str]
"""Where a document sorts: (started_at in epoch microseconds, id as text).

A UUID's canonical text sorts like the UUID, so this orders exactly as (started_at, id).
"""

Position = tuple[int, int]
"""A parsed tail position: (milliseconds, sequence)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_POSITION = re.compile(r"(\d{1,20})-(\d{1,20})")


class HotStoreUnavailable(Exception):
    """The hot tier cannot be reached; readers fall back to SQL, the flusher retries."""


class HotStore(Protocol):
    async def put_many(self, docs: Sequence[Document]) -> None:
        """Store a batch of documents of any tenants; putting a document again keeps one."""
        ...

    async def get(self, tenant_id: uuid.UUID, trace_record_id: uuid.UUID) -> Document | None:
        """The tenant's document with that id, or None (absent, expired or another tenant's)."""
        ...

    async def query(self, query: TraceQuery) -> list[Document]:
        """Up to ``query.limit`` of the tenant's documents matching it, newest first."""
        ...

    def tail(
        self, tenant_id: uuid.UUID, *, after: str | None = None
    ) -> AsyncGenerator[tuple[str, Document], None]:
        """The tenant's documents as they are put, each with its position; runs until cancelled.

        With ``after`` (a position yielded earlier) it starts with the documents put since
        then, as far as the tail still holds them; without, with the next document put. A
        document put twice may be yielded twice.
        """
        ...

    async def ping(self) -> bool:
        """Whether the store answers."""
        ...

    async def aclose(self) -> None: ...


def epoch_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"a trace time needs a zone, not the naive {moment.isoformat()}")
    return (moment - _EPOCH) // _MICROSECOND


def index_key(doc: Document) -> IndexKey:
    return epoch_us(datetime.fromisoformat(doc["started_at"])), doc["id"]


@dataclass(frozen=True, slots=True)
class KeyRange:
    """The index keys a query can match: from ``lowest`` (inclusive) to ``below`` (exclusive)."""

    lowest: IndexKey
    below: IndexKey | None

    @property
    def empty(self) -> bool:
        return self.below is not None and self.below <= self.lowest

    def holds(self, key: IndexKey) -> bool:
        return self.lowest <= key and (self.below is None or key < self.below)


def key_range(query: TraceQuery, oldest: datetime) -> KeyRange:
    """The part of an index worth reading for ``query`` when nothing before ``oldest`` is hot."""
    lowest = max(oldest, query.since) if query.since is not None else oldest
    # "" sorts before every id, so (t, "") bounds everything that started at or after t.
    ceilings = []
    if query.until is not None:
        ceilings.append((epoch_us(query.until), ""))
    if query.before is not None:
        started, record_id = query.before
        ceilings.append((epoch_us(started), str(record_id)))
    return KeyRange(lowest=(epoch_us(lowest), ""), below=min(ceilings, default=None))


def parse_position(position: str) -> Position:
    """A tail position sent back by a client; anything else is bad input."""
    matched = _POSITION.fullmatch(position)
    if matched is None:
        raise InvalidInput(f"not a trace tail position: {position!r}", field="after")
    return int(matched[1]), int(matched[2])


def format_position(position: Position) -> str:
    return f"{position[0]}-{position[1]}"


def hot_store(redis_url: str | None, *, namespace: str, ttl: timedelta) -> HotStore:
    """Redis when configured, otherwise process memory (the embedded mode)."""
    # Imported here because both implementations build on this module.
    from casedesk.traces.hot_memory import MemoryHotStore
    from casedesk.traces.hot_redis import RedisHotStore

    if redis_url is None:
        return MemoryHotStore(ttl=ttl)
    return RedisHotStore(redis_url, namespace=namespace, ttl=ttl)
