"""Writes queued trace batches to SQL at a steady rate, and purges what is too old.

The persister takes batches from the trace queue and writes each in one transaction, after
taking one token per record from a token bucket: SQL sees at most ``rate`` records a second
(with bursts up to one second's worth), however fast calls happen; the queue holds the rest.
A batch is acknowledged only after its commit, and writes skip records already stored, so a
persister killed mid-batch neither loses nor duplicates a record.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from prometheus_client import Counter

from casedesk.kit.clock import utcnow
from casedesk.kit.logging import get_logger
from casedesk.kit.ratelimit import TokenBucket
from casedesk.store.database import Database
from casedesk.store.leases import Lease
from casedesk.store.trace_queue import Batch, TraceQueue
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.traces import sql

PERSISTED = Counter("casedesk_trace_records_persisted_total", "Trace records written to SQL")
PURGED = Counter("casedesk_trace_records_purged_total", "Trace records deleted for their age")
log = get_logger(__name__)


class TracePersister:
    def __init__(
        self, database: Database, queue: TraceQueue, *, rate: float, prefetch: int = 4
    ) -> None:
        self.database = database
        self.queue = queue
        self.bucket = TokenBucket(rate, capacity=rate)
        self.prefetch = prefetch

    async def start(self) -> None:
        await self.queue.consume(self.write, prefetch=self.prefetch)

    async def write(self, batch: Batch) -> None:
        await self.bucket.take(len(batch))
        async with UnitOfWork(self.database) as uow:
            await uow.begin_write()
            await sql.write_batch(uow.session, batch)
            await uow.commit()
        PERSISTED.inc(len(batch))


class TraceRetention:
    """Deletes records older than ``keep``, every ``every``, in one process at a time."""

    def __init__(
        self,
        database: Database,
        *,
        keep: timedelta,
        every: timedelta = timedelta(hours=1),
        chunk: int = 5000,
    ) -> None:
        self.database = database
        self.keep = keep
        self.every = every
        self.chunk = chunk
        self.lease = Lease(database, "casedesk.traces.retention")

    async def purge_once(self) -> int:
        cutoff = utcnow() - self.keep
        total = 0
        while True:
            async with UnitOfWork(self.database) as uow:
                await uow.begin_write()
                purged = await sql.purge_older_than(uow.session, cutoff, limit=self.chunk)
                await uow.commit()
            total += purged
            if purged < self.chunk:
                break
        PURGED.inc(total)
        log.info("trace records purged", records=total, older_than=cutoff.isoformat())
        return total

    async def run(self) -> None:
        while True:
            if await self.lease.try_acquire():
                try:
                    await self.purge_once()
                finally:
                    await self.lease.release()
            await asyncio.sleep(self.every.total_seconds())
