"""The trace store's background work in one process: flusher, and persister with retention.

Every process that calls third parties (servers and workers) flushes its own buffer. The
persister runs where the queue is read: in workers, and in the server itself when there is
no broker (the in-process queue lives in that process) or no separate workers. A broker that
is down at start does not stop the process: the flusher holds its batch and the persister
keeps trying to subscribe.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from casedesk.kit.logging import get_logger
from casedesk.store.bus.base import BusUnavailable
from casedesk.store.database import Database
from casedesk.store.trace_queue import TraceQueue
from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.flusher import TraceFlusher
from casedesk.traces.hot import HotStore
from casedesk.traces.persister import TracePersister, TraceRetention

log = get_logger(__name__)
RETRY_SECONDS = 2.0


class TraceWork:
    def __init__(
        self,
        database: Database,
        buffer: TraceBuffer,
        hot: HotStore,
        queue: TraceQueue,
        *,
        persist: bool,
        rate: float,
        keep: timedelta,
    ) -> None:
        self.queue = queue
        self.flusher = TraceFlusher(buffer, hot, queue)
        self.persister = TracePersister(database, queue, rate=rate) if persist else None
        self.retention = TraceRetention(database, keep=keep) if persist else None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._connect(), name="casedesk-traces"))
        if self.retention is not None:
            self._tasks.append(
                asyncio.create_task(self.retention.run(), name="casedesk-trace-retention")
            )
        self.flusher.start()

    async def _connect(self) -> None:
        """Open the queue and subscribe the persister, trying again while the broker is down."""
        while True:
            try:
                await self.queue.start()
                if self.persister is not None:
                    await self.persister.start()
                return
            except BusUnavailable as exc:
                log.warning("trace queue unavailable; trying again", error=str(exc))
                await asyncio.sleep(RETRY_SECONDS)

    async def stop(self) -> None:
        await self.flusher.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.queue.close()
