"""A token bucket: work at a steady rate with bursts up to the bucket's size."""

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
