"""A token bucket: work at a steady rate with bursts up to the bucket's size.

This paces work inside one process (the trace persister's writes to SQL). Limits shared by
processes, such as a connection's calls to a service, are the ``limits`` package's, in
``integrations/ratelimit.py``. That package answers "may I, now?" per window; it has no
"take N tokens, waiting exactly as long as the rate needs" (a batch larger than a window's
amount could never be taken at all), and its moving window lets a whole window's worth
through at once and then stops, where this bucket refills continuously, which is the
smoothing the persister needs. A local pacer needs no shared storage either.
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, rate: float, capacity: float) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("a token bucket needs a positive rate and capacity")
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def take(self, amount: float) -> None:
        """Wait until ``amount`` tokens are there and take them; waiters are served in turn.

        An amount larger than the bucket is taken in bucket-sized parts.
        """
        async with self._lock:
            left = amount
            while left > 0:
                part = min(left, self.capacity)
                self._refill()
                if self._tokens < part:
                    await asyncio.sleep((part - self._tokens) / self.rate)
                    self._refill()
                self._tokens -= part
                left -= part
