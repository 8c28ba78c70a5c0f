"""The hot tier in Redis.

Layout, with ``{ns}`` the namespace and ``{tenant}`` a tenant id:

``{ns}:trace:{tenant}:{id}``
    String: the document's JSON, expiring ``ttl`` after it was (last) put.
``{ns}:traces:{tenant}``
    Sorted set: the tenant's record ids, scored by started_at in epoch microseconds.
``{ns}:traces:{tenant}:exec:{execution_id}``
    Sorted set: the same for the records of one execution.
``{ns}:traces:{tenant}:conn:{connection_id}``
    Sorted set: the same for the records of one connection.
``{ns}:tail:{tenant}``
    Stream: one entry per document put (field ``doc``: its JSON), capped at about
    ``stream_length`` entries; entry ids are the live tail's positions.

Scores are microseconds, not milliseconds, because started_at keeps microseconds and the
index must sort exactly as queries do; a double holds them exactly until the year 2255.
Equal scores sort by member, and an id's text sorts like the id, so reading an index
backwards gives (started_at, id) newest first. Every write to an index refreshes its expiry
and removes the members that started more than ``ttl`` ago, so no index outgrows the hot
window; an index no longer written expires with its records. Members whose record has
expired in between are skipped on read.

``put_many`` sends a batch as one call of a server-side script (``_PUT_SCRIPT``): the
records, their tail entries and the index updates of the whole batch in one command, which
costs the client one command to encode and one reply to parse instead of several per record.
Each write in it is idempotent, so a batch retried after a failure leaves the same state
(its documents appear on the tail again).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing, contextmanager
from datetime import datetime, timedelta
from typing import cast

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from casedesk.kit.clock import utcnow
from casedesk.traces.documents import Document
from casedesk.traces.hot import (
    HotStoreUnavailable,
    IndexKey,
    KeyRange,
    epoch_us,
    index_key,
    key_range,
    parse_position,
)
from casedesk.traces.query import TraceQuery

# Replies as redis-py returns them, undecoded.
_ScoredMembers = list[tuple[bytes, float]]
_StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
_StreamsRead = list[tuple[bytes, _StreamEntries]]

_FIRST_CHUNK = 64
_LARGEST_CHUNK = 4096
_TAIL_COUNT = 500
# Below the socket timeout, so a quiet tail is not taken for a dead connection.
_TAIL_BLOCK_MS = 2_000
_SOCKET_TIMEOUT_S = 5.0
_CONNECT_TIMEOUT_S = 2.0

_PUT_SCRIPT = """
-- ARGV[1]: the batch's plan as JSON: namespace, ttl in ms, the tails' length, the lowest
-- score kept, and for each record [tenant, id, score, execution id or null, connection id
-- or null]; ARGV[1 + i]: the JSON of record i. The keys are those of the module's layout.
local plan = cjson.decode(ARGV[1])
local ns, ttl, length = plan.ns, plan.ttl, plan.length
local indexes, order, tails = {}, {}, {}
local function index(key, score, id)
  local members = indexes[key]
  if members == nil then
    members = {}
    indexes[key] = members
    order[#order + 1] = key
  end
  members[#members + 1] = score
  members[#members + 1] = id
end
for i, record in ipairs(plan.records) do
  local tenant, id, score = record[1], record[2], record[3]
  local doc = ARGV[1 + i]
  local tail = ns .. ':tail:' .. tenant
  redis.call('SET', ns .. ':trace:' .. tenant .. ':' .. id, doc, 'PX', ttl)
  redis.call('XADD', tail, 'MAXLEN', '~', length, '*', 'doc', doc)
  tails[tail] = true
  local timeline = ns .. ':traces:' .. tenant
  index(timeline, score, id)
  if record[4] ~= cjson.null then
    index(timeline .. ':exec:' .. record[4], score, id)
  end
  if record[5] ~= cjson.null then
    index(timeline .. ':conn:' .. record[5], score, id)
  end
end
for tail in pairs(tails) do
  redis.call('PEXPIRE', tail, ttl)
end
for _, key in ipairs(order) do
  local members = indexes[key]
  for first = 1, #members, 7000 do  -- within Lua's limit on unpacked values
    redis.call('ZADD', key, unpack(members, first, math.min(first + 6999, #members)))
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. plan.lowest)
  redis.call('PEXPIRE', key, ttl)
end
return #plan.records
"""


@contextmanager
def _reaching_redis() -> Iterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise HotStoreUnavailable(f"the hot store's Redis cannot be reached: {exc}") from exc


def _settle(read: asyncio.Future[_StreamsRead]) -> None:
    """Take the outcome of a read nobody waits for any more, so it is not reported as lost."""
    if not read.cancelled():
        read.exception()


class _Keys:
    def __init__(self, namespace: str) -> None:
        self._ns = namespace

    @property
    def namespace(self) -> str:
        return self._ns

    def record(self, tenant: str, record_id: str) -> str:
        return f"{self._ns}:trace:{tenant}:{record_id}"

    def timeline(self, tenant: str) -> str:
        return f"{self._ns}:traces:{tenant}"

    def execution(self, tenant: str, execution_id: str) -> str:
        return f"{self._ns}:traces:{tenant}:exec:{execution_id}"

    def connection(self, tenant: str, connection_id: str) -> str:
        return f"{self._ns}:traces:{tenant}:conn:{connection_id}"

    def tail(self, tenant: str) -> str:
        return f"{self._ns}:tail:{tenant}"

    def indexes_of(self, doc: Document) -> list[str]:
        tenant = doc["tenant_id"]
        indexes = [self.timeline(tenant)]
        if doc["execution_id"] is not None:
            indexes.append(self.execution(tenant, doc["execution_id"]))
        if doc["connection_id"] is not None:
            indexes.append(self.connection(tenant, doc["connection_id"]))
        return indexes

    def index_for(self, query: TraceQuery) -> str:
        """The narrowest index that holds every answer to ``query``."""
        tenant = str(query.tenant_id)
        if query.execution_id is not None:
            return self.execution(tenant, query.execution_id)
        if query.connection_id is not None:
            return self.connection(tenant, str(query.connection_id))
        return self.timeline(tenant)


def _next_page(top: int | None, offset: int, keys: list[IndexKey]) -> tuple[int, int]:
    """Where to read on after ``keys``: the last score again, past the members already read.

    Reading on from a score rather than from an offset into the whole index keeps paging
    right while the flusher adds records; only members sharing a score need an offset.
    """
    last = keys[-1][0]
    read_at_last = sum(1 for score, _ in keys if score == last)
    return last, offset + read_at_last if last == top else read_at_last


class RedisHotStore:
    def __init__(
        self,
        url: str,
        *,
        namespace: str = "casedesk",
        ttl: timedelta = timedelta(hours=24),
        stream_length: int = 10_000,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if ttl < timedelta(milliseconds=1):
            raise ValueError(f"the hot store keeps traces for at least 1 ms, not {ttl}")
        self._redis = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=_CONNECT_TIMEOUT_S,
            socket_timeout=_SOCKET_TIMEOUT_S,
            # Give up quickly: readers have SQL to fall back to and the flusher retries.
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
        )
        self._keys = _Keys(namespace)
        self._ttl = ttl
        self._ttl_ms = ttl // timedelta(milliseconds=1)
        self._stream_length = stream_length
        self._clock = clock
        self._put = self._redis.register_script(_PUT_SCRIPT)

    async def put_many(self, docs: Sequence[Document]) -> None:
        lowest = epoch_us(self._clock() - self._ttl)
        keyed = [(index_key(doc), doc) for doc in docs]
        hot = [(key, doc) for key, doc in keyed if key[0] >= lowest]
        if not hot:
            return
        with _reaching_redis():
            await self._put(args=self._batch(hot, lowest))

    async def get(self, tenant_id: uuid.UUID, trace_record_id: uuid.UUID) -> Document | None:
        with _reaching_redis():
            payload = await self._redis.get(self._keys.record(str(tenant_id), str(trace_record_id)))
        if payload is None:
            return None
        doc: Document = orjson.loads(payload)
        return doc if index_key(doc)[0] >= epoch_us(self._clock() - self._ttl) else None

    async def query(self, query: TraceQuery) -> list[Document]:
        bounds = key_range(query, self._clock() - self._ttl)
        if query.limit < 1 or bounds.empty:
            return []
        found: list[Document] = []
        newest = self._newest(self._keys.index_for(query), str(query.tenant_id), bounds)
        async with aclosing(newest):
            async for doc in newest:
                if not query.matches(doc):
                    continue
                found.append(doc)
                if len(found) == query.limit:
                    break
        return found

    def tail(
        self, tenant_id: uuid.UUID, *, after: str | None = None
    ) -> AsyncGenerator[tuple[str, Document], None]:
        if after is not None:
            parse_position(after)
        return self._follow(self._keys.tail(str(tenant_id)), after)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisConnectionError, RedisTimeoutError):
            return False

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _batch(self, hot: list[tuple[IndexKey, Document]], lowest: int) -> list[bytes]:
        """The arguments of one call of ``_PUT_SCRIPT``: the plan, then each document.

        Scores travel as text: Lua's numbers would print a microsecond score rounded.
        """
        records = [
            (doc["tenant_id"], record_id, str(started), doc["execution_id"], doc["connection_id"])
            for (started, record_id), doc in hot
        ]
        plan = {
            "ns": self._keys.namespace,
            "ttl": self._ttl_ms,
            "length": self._stream_length,
            "lowest": str(lowest),
            "records": records,
        }
        return [orjson.dumps(plan), *(orjson.dumps(doc) for _, doc in hot)]

    async def _newest(
        self, index: str, tenant: str, bounds: KeyRange
    ) -> AsyncGenerator[Document, None]:
        """The live documents of an index within ``bounds``, newest first, in growing chunks."""
        top = None if bounds.below is None else bounds.below[0]
        offset = 0
        size = _FIRST_CHUNK
        while True:
            keys = await self._read_index(index, top, bounds.lowest[0], offset, size)
            for doc in await self._records(tenant, [key for key in keys if bounds.holds(key)]):
                yield doc
            if len(keys) < size:
                return
            top, offset = _next_page(top, offset, keys)
            size = min(size * 2, _LARGEST_CHUNK)

    async def _read_index(
        self, index: str, top: int | None, lowest: int, offset: int, size: int
    ) -> list[IndexKey]:
        with _reaching_redis():
            entries = await self._redis.zrange(
                index,
                "+inf" if top is None else top,
                lowest,
                desc=True,
                byscore=True,
                withscores=True,
                offset=offset,
                num=size,
            )
        return [(int(score), member.decode()) for member, score in cast(_ScoredMembers, entries)]

    async def _records(self, tenant: str, keys: list[IndexKey]) -> list[Document]:
        if not keys:
            return []
        with _reaching_redis():
            payloads = await self._redis.mget([self._keys.record(tenant, rid) for _, rid in keys])
        # A missing payload is a record expired before its index entry was trimmed.
        return [orjson.loads(payload) for payload in payloads if payload is not None]

    async def _follow(
        self, stream: str, after: str | None
    ) -> AsyncGenerator[tuple[str, Document], None]:
        position = after if after is not None else await self._last_position(stream)
        while True:
            for _, entries in await self._read_apart(stream, position):
                for entry_id, fields in entries:
                    position = entry_id.decode()
                    yield position, orjson.loads(fields[b"doc"])

    async def _read_apart(self, stream: str, position: str) -> _StreamsRead:
        """The stream's entries after ``position``, read in a task of its own.

        redis-py writes through ``asyncio.wait_for``, which on Python 3.11 loses a cancellation
        that lands just as the write completes. A tail ends only by being cancelled, so its
        reads run apart and the cancellation is taken here, where nothing can lose it.
        """
        reading = asyncio.ensure_future(self._read_after(stream, position))
        try:
            return await asyncio.shield(reading)
        except asyncio.CancelledError:
            reading.add_done_callback(_settle)
            reading.cancel()
            raise

    async def _read_after(self, stream: str, position: str) -> _StreamsRead:
        with _reaching_redis():
            answer = await self._redis.xread(
                {stream: position}, count=_TAIL_COUNT, block=_TAIL_BLOCK_MS
            )
        return cast(_StreamsRead, answer) or []

    async def _last_position(self, stream: str) -> str:
        """The newest entry's id, so reading after it yields only what is put from now on."""
        with _reaching_redis():
            newest = await self._redis.xrevrange(stream, count=1)
        entries = cast(_StreamEntries, newest)
        return entries[0][0].decode() if entries else "0-0"
