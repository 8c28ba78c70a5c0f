"""The bounded in-memory buffer between the call path and the trace flusher.

The call path only appends what it captured of an attempt: no await, no I/O, no redaction,
so a slow or absent trace store never slows a third-party call, and recording costs it
little. Entries become redacted records when they are taken out (``drain``, or ``take``
and ``finish`` in the flusher). When the flusher falls behind, the oldest entries make room
for new ones and every dropped one is counted, in the buffer and as a metric.
"""

from __future__ import annotations

import asyncio
from collections import deque

from prometheus_client import Counter

from casedesk.kit.logging import get_logger
from casedesk.traces.capture import CapturedAttempt
from casedesk.traces.records import TraceRecord

DROPPED = Counter(
    "casedesk_trace_records_dropped_total",
    "Trace records dropped because the in-memory buffer was full",
)
UNFINISHED = Counter(
    "casedesk_trace_records_unfinished_total",
    "Captured attempts that could not be made into a trace record (a defect; logged)",
)
Entry = TraceRecord | CapturedAttempt
"""What the buffer holds: a captured attempt, or a record made already."""
log = get_logger(__name__)


def finish(entry: Entry) -> TraceRecord | None:
    """The redacted record of an entry; None (logged and counted) if it cannot be made,
    so that one bad capture never stops the records behind it."""
    if isinstance(entry, TraceRecord):
        return entry
    try:
        return entry.finish()
    except Exception:
        UNFINISHED.inc()
        log.exception("a trace record could not be made", connector=entry.origin.connector)
        return None


class TraceBuffer:
    """Holds up to ``capacity`` records, oldest first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a trace buffer holds at least one record, not {capacity}")
        self._records: deque[Entry] = deque(maxlen=capacity)
        self._dropped = 0
        self._arrived = asyncio.Event()

    @property
    def capacity(self) -> int:
        return self._records.maxlen or 0

    @property
    def dropped(self) -> int:
        """Records pushed out by newer ones since the buffer was made."""
        return self._dropped

    def __len__(self) -> int:
        return len(self._records)

    def append(self, entry: Entry) -> None:
        if len(self._records) == self._records.maxlen:
            self._dropped += 1
            DROPPED.inc()
        self._records.append(entry)
        self._arrived.set()

    def take(self, max_records: int) -> list[Entry]:
        """Take up to ``max_records`` of the oldest entries out of the buffer, unfinished."""
        count = min(max_records, len(self._records))
        return [self._records.popleft() for _ in range(count)]

    def drain(self, max_records: int) -> list[TraceRecord]:
        """Take up to ``max_records`` of the oldest entries out of the buffer, as records."""
        return [record for entry in self.take(max_records) if (record := finish(entry))]

    async def wait_for_records(self) -> None:
        """Return once the buffer holds at least one record."""
        while not self._records:
            self._arrived.clear()
            await self._arrived.wait()
