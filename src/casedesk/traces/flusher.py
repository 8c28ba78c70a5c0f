"""Moves trace records from the call path's buffer to the hot tier and the queue.

The flusher makes the records: it takes what the call path captured and redacts it, a
slice of at most ``slice_seconds`` at a time with the event loop let go in between, so the
work moved off the calls does not hold them up in a block either. Each batch goes to the
hot tier first (so it is queryable within moments) and then to the queue the SQL persister
reads. The two fail apart:

- hot tier down: the batch still goes to the queue (and so to SQL, which reads fall back to);
  the failure is logged and counted;
- queue down: the batch is kept and offered again with backoff, and no new batch is taken
  meanwhile, so records wait in the buffer; if the outage outlasts the buffer, the oldest
  are dropped and counted there. The calls themselves never wait for any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import Counter

from casedesk.kit.logging import get_logger
from casedesk.store.bus.base import BusUnavailable
from casedesk.store.trace_queue import TraceQueue
from casedesk.traces.buffer import Entry, TraceBuffer, finish
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
        slice_seconds: float = 0.0005,
    ) -> None:
        self.buffer = buffer
        self.hot = hot
        self.queue = queue
        self.batch_size = batch_size
        self.linger = linger
        """How long a lone record may wait for others to share its batch."""
        self.max_backoff = max_backoff
        self.slice_seconds = slice_seconds
        """How long redaction may keep the event loop before other tasks get a turn."""
        self._taken: list[Entry] = []
        """Entries out of the buffer whose records are being made (made again if cancelled)."""
        self._held: list[Document] = []
        self._task: asyncio.Task[None] | None = None

    async def flush_once(self) -> int:
        """Move one batch; returns how many records reached the queue (0 when it is down)."""
        if not self._held:
            self._taken = self._taken or self.buffer.take(self.batch_size)
            if not self._taken:
                return 0
            self._held = await self._documents(self._taken)
            self._taken = []
            if not self._held:
                return 0
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

    async def _documents(self, entries: list[Entry]) -> list[Document]:
        docs: list[Document] = []
        until = time.perf_counter() + self.slice_seconds
        for entry in entries:
            record = finish(entry)
            if record is not None:
                docs.append(document(record))
            if time.perf_counter() > until:
                await asyncio.sleep(0)
                until = time.perf_counter() + self.slice_seconds
        return docs

    async def _to_hot(self, docs: list[Document]) -> None:
        try:
            await self.hot.put_many(docs)
        except HotStoreUnavailable as exc:
            HOT_FAILURES.inc()
            log.warning("trace hot tier unavailable", records=len(docs), error=str(exc))

    async def run(self) -> None:
        backoff = 0.05
        while True:
            if not self._held and not self._taken and len(self.buffer) == 0:
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
                while (self._held or self._taken or len(self.buffer)) and await self.flush_once():
                    pass
