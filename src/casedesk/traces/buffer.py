"""The bounded in-memory buffer between the call path and the trace flusher.

The call path only appends: no await, no I/O, so a slow or absent trace store never slows
a third-party call. When the flusher falls behind, the oldest records make room for new
ones and every dropped record is counted, in the buffer and as a metric.
"""

from __future__ import annotations

import asyncio
from collections import deque

from prometheus_client import Counter

from casedesk.traces.records import TraceRecord

DROPPED = Counter(
    "casedesk_trace_records_dropped_total",
    "Trace records dropped because the in-memory buffer was full",
)


class TraceBuffer:
    """Holds up to ``capacity`` records, oldest first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a trace buffer holds at least one record, not {capacity}")
        self._records: deque[TraceRecord] = deque(maxlen=capacity)
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

    def append(self, record: TraceRecord) -> None:
        if len(self._records) == self._records.maxlen:
            self._dropped += 1
            DROPPED.inc()
        self._records.append(record)
        self._arrived.set()

    def drain(self, max_records: int) -> list[TraceRecord]:
        """Take up to ``max_records`` of the oldest records out of the buffer."""
        count = min(max_records, len(self._records))
        return [self._records.popleft() for _ in range(count)]

    async def wait_for_records(self) -> None:
        """Return once the buffer holds at least one record."""
        while not self._records:
            self._arrived.clear()
            await self._arrived.wait()
