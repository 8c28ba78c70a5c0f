"""The token bucket, on a clock the test moves: rate and burst held, waiters served in turn."""

from __future__ import annotations

import pytest

from casedesk.kit import ratelimit
from casedesk.kit.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ratelimit.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(ratelimit.asyncio, "sleep", fake.sleep)
    return fake


async def test_a_full_bucket_gives_its_burst_at_once(clock: Clock) -> None:
    bucket = TokenBucket(rate=100, capacity=100)
    await bucket.take(100)
    assert clock.slept == []


async def test_beyond_the_burst_work_waits_at_the_rate(clock: Clock) -> None:
    bucket = TokenBucket(rate=100, capacity=100)
    await bucket.take(100)
    await bucket.take(50)
    assert clock.now == pytest.approx(0.5)


async def test_more_than_the_bucket_holds_is_taken_in_parts_at_the_rate(clock: Clock) -> None:
    bucket = TokenBucket(rate=1000, capacity=1000)
    await bucket.take(1000)
    await bucket.take(10_000)  # a 10x burst: ten seconds of work, never faster
    assert clock.now == pytest.approx(10.0)
    assert max(clock.slept) == pytest.approx(1.0)


async def test_idle_time_refills_only_up_to_the_capacity(clock: Clock) -> None:
    bucket = TokenBucket(rate=10, capacity=20)
    await bucket.take(20)
    clock.now += 60  # a long quiet spell
    await bucket.take(30)
    assert clock.now == pytest.approx(61.0)  # 20 banked at most, 10 more at 10/s


def test_a_bucket_needs_a_positive_rate_and_capacity() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate=0, capacity=10)
