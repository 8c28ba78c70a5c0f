"""Moves trace records from the call path's buffer to the hot tier and the queue.

Each batch goes to the hot tier first (so it is queryable within moments) and then to the
queue the SQL persister reads. The two fail apart:

- hot tier down: the batch still goes to the queue (and so to SQL, which reads fall back to);
  the failure is logged and counted;
- queue down: the batch is kept and offered again with backoff, and no new batch is taken
  meanwhile, so records wait in the buffer; if the outage outlasts the buffer, the oldest
  are dropped and counted there. The calls themselves never wait for any of this.
"""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import Counter

from casedesk.kit.logging import get_logger
from casedesk.store.bus.base import BusUnavailable
from casedesk.store.trace_queue import TraceQueue
from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.documents import Document, document
from casedesk.traces.hot import HotStore, HotStoreUnavailable

FLUSHED = Counter("casedesk_trace_records_flushed_total", "Trace records handed to the queue")
HOT_FAILURES = Counter(
    "casedesk_trace_hot_write_failures_total", "Trace batches the hot tier did not take"
)
QUEUE_FAILURES = Counter(
    "casedesk_trace_queue_failures_total", "Trace batches the queue did not take (kept)"
)
log = get_logger(__name__)


class TraceFlusher:
    def __init__(
        self,
        buffer: TraceBuffer,
        hot: HotStore,
        queue: TraceQueue,
        *,
        batch_size: int = 1000,
        linger: float = 0.02,
        max_backoff: float = 5.0,
    ) -> None:
        self.buffer = buffer
        self.hot = hot
        self.queue = queue
        self.batch_size = batch_size
        self.linger = linger
        """How long a lone record may wait for others to share its batch."""
        self.max_backoff = max_backoff
        self._held: list[Document] = []
        self._task: asyncio.Task[None] | None = None

    async def flush_once(self) -> int:
        """Move one batch; returns how many records reached the queue (0 when it is down)."""
        if not self._held:
            records = self.buffer.drain(self.batch_size)
            if not records:
                return 0
            self._held = [document(record) for record in records]
            await self._to_hot(self._held)
        try:
            await self.queue.publish(self._held)
        except BusUnavailable as exc:
            QUEUE_FAILURES.inc()
            log.warning(
                "trace queue unavailable; records wait", records=len(self._held), error=str(exc)
            )
            return 0
        moved, self._held = len(self._held), []
        FLUSHED.inc(moved)
        return moved

    async def _to_hot(self, docs: list[Document]) -> None:
        try:
            await self.hot.put_many(docs)
        except HotStoreUnavailable as exc:
            HOT_FAILURES.inc()
            log.warning("trace hot tier unavailable", records=len(docs), error=str(exc))

    async def run(self) -> None:
        backoff = 0.05
        while True:
            if not self._held and len(self.buffer) == 0:
                await self.buffer.wait_for_records()
                await asyncio.sleep(self.linger)
            moved = await self.flush_once()
            if self._held and moved == 0:  # the queue is down: wait, then offer the batch again
                await asyncio.sleep(backoff)
                backoff = min(self.max_backoff, backoff * 2)
                continue
            backoff = 0.05

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self, *, drain_for: float = 2.0) -> None:
        """Stop the loop, then move what is left, for at most ``drain_for`` seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_for):
                while (self._held or len(self.buffer)) and await self.flush_once():
                    pass
