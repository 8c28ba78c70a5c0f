"""A poison event never stops delivery: it is moved aside with its error, visible and
replayable, and the relay loop survives any error of a batch."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import JSON, String, cast, insert, select, type_coerce, update

from casedesk.bootstrap import Container, job_handlers
from casedesk.kit.clock import utcnow
from casedesk.kit.ids import uuid7
from casedesk.store.bus.base import Message, Subscription
from casedesk.store.bus.inprocess import InProcessBus
from casedesk.store.models import OutboxEvent
from casedesk.worker.relay import GROUP, MAX_MESSAGE_BYTES, Relay
from casedesk.worker.scheduler import Scheduler
from tests.support.cases import Desk

DEPTH = 300
"""Deeper than any JSON encoder on the wire takes (orjson stops at 255)."""


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.fixture
async def bus() -> AsyncIterator[InProcessBus]:
    bus = InProcessBus(retry_delay=0.001)
    await bus.start()
    yield bus
    await bus.close()


async def _recorder(bus: InProcessBus) -> list[Message]:
    seen: list[Message] = []

    async def handler(message: Message) -> None:
        seen.append(message)

    async def no_dead_letters(group: str, message: Message, error: str) -> None:
        raise AssertionError(f"unexpected dead letter: {error}")

    await bus.subscribe(Subscription("recorder", ["*"], handler), no_dead_letters)
    return seen


async def _drain(relay: Relay) -> None:
    while await relay.relay_once():
        pass


async def _poison(
    container: Container, desk: Desk, case_id: str, *, too_deep: bool = False
) -> uuid.UUID:
    """An outbox event no broker would take: its data is larger than a message may be, or
    (as an older casedesk could write it) nested too deep to serialise. The deep one is
    written as JSON text, past the serialiser that now refuses such values."""
    event_id = uuid7()
    data: Any = {"case": {}, "note": "x" * (MAX_MESSAGE_BYTES + 1)}
    if too_deep:
        data = type_coerce('{"case": {}, "form": ' + _nested(DEPTH) + "}", String)
        if container.database.dialect == "postgresql":
            data = cast(data, JSON)
    async with container.unit_of_work() as uow:
        await uow.begin_write()
        await uow.session.execute(
            insert(OutboxEvent.__table__).values(
                tenant_id=desk.tenant.id,
                event_id=event_id,
                type="case.updated",
                source=f"/tenants/{desk.tenant.id}/cases",
                subject_type="case",
                subject_id=uuid.UUID(case_id),
                time=utcnow(),
                data=data,
                traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01",
            )
        )
        await uow.commit()
    return event_id


async def _dead_letters(desk: Desk) -> list[dict[str, Any]]:
    response = await desk.http.get(
        "/api/v1/dead-letters", params={"group": GROUP}, headers=desk.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _run_jobs(container: Container) -> None:
    scheduler = Scheduler(container.database, job_handlers(container))
    while await scheduler.run_once():
        pass


async def test_a_poison_event_is_moved_aside_and_the_events_behind_it_are_delivered(
    desk: Desk, container: Container, bus: InProcessBus
) -> None:
    relay = Relay(container.database, bus)
    await _drain(relay)
    seen = await _recorder(bus)
    case = await desk.new_case()
    poison = await _poison(container, desk, case["id"])
    after = await desk.new_case()

    await _drain(relay)

    delivered = [m for m in seen if m.tenant_id == str(desk.tenant.id)]
    assert str(poison) not in {m.id for m in delivered}
    assert [(m.subject, m.type) for m in delivered] == [
        (case["id"], "case.created"),
        (case["id"], "task.created"),
        (after["id"], "case.created"),
        (after["id"], "task.created"),
    ]
    [dead] = await _dead_letters(desk)
    assert dead["event_id"] == str(poison)
    assert dead["consumer_group"] == GROUP
    assert f"a message may have {MAX_MESSAGE_BYTES}" in dead["error"]
    assert dead["envelope"]["subject"] == case["id"]
    async with container.unit_of_work(desk.tenant.id) as uow:
        row = await uow.session.scalar(select(OutboxEvent).where(OutboxEvent.event_id == poison))
        assert row is not None
        assert row.dead_at is not None
        assert row.published_at is None
    assert await relay.relay_once() == 0  # it is never tried again by itself
    feed = await desk.events()
    assert str(poison) not in {event["id"] for event in feed}


async def test_a_replayed_poison_event_fails_while_it_cannot_be_published_then_is_delivered(
    desk: Desk, container: Container, bus: InProcessBus
) -> None:
    relay = Relay(container.database, bus)
    await _drain(relay)
    seen = await _recorder(bus)
    case = await desk.new_case()
    poison = await _poison(container, desk, case["id"])
    await _drain(relay)
    [dead] = await _dead_letters(desk)

    asked = await desk.http.post(f"/api/v1/dead-letters/{dead['id']}/replay", headers=desk.headers)
    assert asked.status_code == 202, asked.text
    await _run_jobs(container)
    failed = await desk.http.get(f"/api/v1/dead-letters/{dead['id']}", headers=desk.headers)
    assert failed.json()["replay_status"] == "failed"
    assert "still cannot be published" in failed.json()["replay_error"]

    async with container.unit_of_work(desk.tenant.id) as uow:  # the data is mended
        await uow.begin_write()
        await uow.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.event_id == poison)
            .values(data={"case": {}, "note": "short now"})
        )
        await uow.commit()
    again = await desk.http.post(f"/api/v1/dead-letters/{dead['id']}/replay", headers=desk.headers)
    assert again.status_code == 202, again.text
    await _run_jobs(container)
    await _drain(relay)
    replayed = await desk.http.get(f"/api/v1/dead-letters/{dead['id']}", headers=desk.headers)
    assert replayed.json()["replay_status"] == "succeeded"
    assert str(poison) in {m.id for m in seen}


async def test_an_event_whose_data_cannot_be_serialised_is_moved_aside(
    desk: Desk, container: Container, bus: InProcessBus, backend: str
) -> None:
    if backend == "mariadb":
        pytest.skip("MariaDB refuses JSON nested deeper than 32 levels when it is written")
    relay = Relay(container.database, bus)
    await _drain(relay)
    seen = await _recorder(bus)
    case = await desk.new_case()
    poison = await _poison(container, desk, case["id"], too_deep=True)
    await _drain(relay)
    assert str(poison) not in {m.id for m in seen}
    assert case["id"] in {m.subject for m in seen}
    [dead] = await _dead_letters(desk)
    assert dead["event_id"] == str(poison)
    assert "cannot be serialised as JSON" in dead["error"]


class _FailingOnce(InProcessBus):
    """A bus whose first publish fails with an error that is not the broker being down."""

    def __init__(self) -> None:
        super().__init__(retry_delay=0.001)
        self.failures = 0

    async def publish(self, messages: Sequence[Message]) -> None:
        if self.failures == 0:
            self.failures += 1
            raise RuntimeError("a bug in one batch")
        await super().publish(messages)


async def test_the_relay_loop_survives_an_error_of_a_batch_and_relays_it_after(
    desk: Desk, container: Container
) -> None:
    bus = _FailingOnce()
    await bus.start()
    relay = Relay(container.database, bus, retry_seconds=0.05)
    elsewhere = InProcessBus()  # earlier tests' events go there, to nobody
    await elsewhere.start()
    await _drain(Relay(container.database, elsewhere))
    await elsewhere.close()
    seen = await _recorder(bus)
    case = await desk.new_case()
    stop = asyncio.Event()
    loop = asyncio.create_task(relay.run(stop))
    try:
        async with asyncio.timeout(30):
            while case["id"] not in {m.subject for m in seen}:
                assert not loop.done(), loop
                await asyncio.sleep(0.02)
        assert bus.failures == 1
        assert not loop.done()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(loop, 10)
        await bus.close()
