from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.records import TraceRecord


def record(attempt: int) -> TraceRecord:
    return TraceRecord(
        id=uuid.uuid4(),
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        parent_span_id=None,
        tenant_id=uuid.UUID(int=1),
        execution_id=None,
        connection_id=None,
        connector="test",
        action=None,
        attempt=attempt,
        method="GET",
        url="https://api.example.com/",
        request_headers=(),
        request_body=None,
        status=200,
        response_headers=(),
        response_body=None,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_ms=1.0,
        ttfb_ms=0.5,
        error=None,
    )


def dropped_metric() -> float:
    return REGISTRY.get_sample_value("casedesk_trace_records_dropped_total") or 0.0


def test_records_are_drained_oldest_first_up_to_the_count() -> None:
    buffer = TraceBuffer(10)
    for attempt in range(1, 6):
        buffer.append(record(attempt))

    assert [r.attempt for r in buffer.drain(3)] == [1, 2, 3]
    assert len(buffer) == 2
    assert [r.attempt for r in buffer.drain(100)] == [4, 5]
    assert buffer.drain(100) == []


def test_when_full_the_oldest_records_are_dropped_and_counted() -> None:
    buffer = TraceBuffer(3)
    before = dropped_metric()

    for attempt in range(1, 6):
        buffer.append(record(attempt))

    assert len(buffer) == 3
    assert buffer.dropped == 2
    assert dropped_metric() - before == 2
    assert [r.attempt for r in buffer.drain(10)] == [3, 4, 5]


def test_nothing_is_dropped_while_there_is_room() -> None:
    buffer = TraceBuffer(3)
    buffer.append(record(1))
    buffer.drain(1)
    for attempt in range(3):
        buffer.append(record(attempt))

    assert buffer.dropped == 0


def test_a_buffer_needs_room_for_a_record() -> None:
    with pytest.raises(ValueError, match="at least one"):
        TraceBuffer(0)


async def test_a_waiting_flusher_wakes_when_a_record_arrives() -> None:
    buffer = TraceBuffer(10)
    waiting = asyncio.create_task(buffer.wait_for_records())
    await asyncio.sleep(0.01)
    assert not waiting.done()

    buffer.append(record(1))

    await asyncio.wait_for(waiting, timeout=1)


async def test_waiting_returns_at_once_when_records_are_there() -> None:
    buffer = TraceBuffer(10)
    buffer.append(record(1))

    await asyncio.wait_for(buffer.wait_for_records(), timeout=0.1)


async def test_a_flusher_that_drained_everything_waits_again() -> None:
    buffer = TraceBuffer(10)
    buffer.append(record(1))
    await buffer.wait_for_records()
    buffer.drain(10)

    waiting = asyncio.create_task(buffer.wait_for_records())
    await asyncio.sleep(0.01)

    assert not waiting.done()
    waiting.cancel()
