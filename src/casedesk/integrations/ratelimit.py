"""Rate limits per connection, held across every process that calls out.

A connection may declare how often the service lets it call ("100 per minute", or several:
"5 per second; 1000 per hour"). The count is kept by the ``limits`` package with its moving
window, which never lets more calls through in any window than declared: in Redis when
``CASEDESK_REDIS_URL`` is set, so every server and worker shares one count per connection,
and in this process's memory otherwise (the embedded mode has one process).

Over the limit, a call waits for the window to free a slot, as long as the connection's
wait allows, and otherwise fails at once with ``OutboundRateLimited`` (429) naming the limit
and when the next slot frees. A Redis that cannot be reached does not stop calls: they go
ahead unlimited, logged and counted (``casedesk_outbound_rate_limit_unavailable_total``), as
the service's own 429s, which the hub retries, still hold them back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from prometheus_client import Counter

from casedesk.integrations.errors import OutboundRateLimited
from casedesk.kit.logging import get_logger

UNAVAILABLE = Counter(
    "casedesk_outbound_rate_limit_unavailable_total",
    "Outbound calls let through unlimited because the rate-limit store could not be reached",
)
_REDIS_TIMEOUT_S = 1.0
_SHORTEST_WAIT_S = 0.01
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A connection's declared limits, parsed: ``RateLimit.parse("100 per minute")``."""

    text: str
    items: tuple[RateLimitItem, ...]

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Raises ValueError for a text the ``limits`` notation does not read."""
        return cls(text, tuple(parse_many(text)))


class RateLimits:
    """The process's rate-limit store: one per hub. Close it with the hub."""

    def __init__(self, redis_url: str | None, *, namespace: str) -> None:
        self._pool: aioredis.ConnectionPool | None = None
        storage: Storage
        if redis_url is None:
            storage = MemoryStorage()
        else:
            self._pool = aioredis.ConnectionPool.from_url(
                redis_url,
                socket_connect_timeout=_REDIS_TIMEOUT_S,
                socket_timeout=_REDIS_TIMEOUT_S,
            )
            storage = RedisStorage(
                _limits_uri(redis_url),
                implementation="redispy",
                key_prefix=f"{namespace}.ratelimit",
                wrap_exceptions=True,
                # Our own pool, so closing the hub closes its connections; the option is
                # handed to redis-py, though limits' annotation knows only scalar options.
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
        self.shared = redis_url is not None
        self._limiter = MovingWindowRateLimiter(storage)

    async def acquire(self, limit: RateLimit, key: str, *, connection: str, wait: float) -> None:
        """Take one slot of every item of ``limit`` for ``key``, waiting up to ``wait``
        seconds for them; raises ``OutboundRateLimited`` when that is not enough."""
        deadline = time.monotonic() + wait
        try:
            while True:
                free_in = await self._free_in(limit.items, key)
                if free_in is None and await self._hit_all(limit.items, key):
                    return
                pause = max(free_in or 0.0, _SHORTEST_WAIT_S)
                if time.monotonic() + pause > deadline:
                    raise OutboundRateLimited(connection, limit.text, pause)
                await asyncio.sleep(pause)
        except StorageError as error:
            UNAVAILABLE.inc()
            log.warning(
                "rate limit store unavailable; the call goes ahead unlimited",
                connection=connection,
                error=f"{type(error.storage_error).__name__}: {error.storage_error}",
            )

    async def _free_in(self, items: Sequence[RateLimitItem], key: str) -> float | None:
        """Seconds until every item has a free slot; None when they all have one now."""
        longest: float | None = None
        for item in items:
            if not await self._limiter.test(item, key):
                stats = await self._limiter.get_window_stats(item, key)
                free_in = max(stats.reset_time - time.time(), 0.0)
                longest = free_in if longest is None else max(longest, free_in)
        return longest

    async def _hit_all(self, items: Sequence[RateLimitItem], key: str) -> bool:
        """Take a slot of each item; False when another caller took the last one first."""
        for item in items:
            if not await self._limiter.hit(item, key):
                return False
        return True

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def _limits_uri(redis_url: str) -> str:
    """The ``limits`` spelling of a redis-py URL (``async+redis://``, ``async+redis+unix://``)."""
    if redis_url.startswith("unix://"):
        return "async+redis+" + redis_url
    return "async+" + redis_url
