"""The relay and consumer groups over RabbitMQ, on every database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from casedesk.bootstrap import Container
from casedesk.store.bus.base import BusUnavailable, Message
from casedesk.store.bus.rabbitmq import RabbitMQBus
from casedesk.store.models import Comment
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.consumers import ConsumerGroup, Consumers
from casedesk.worker.relay import Relay
from tests.support.cases import Desk
from tests.support.services import drop_broker_names


@pytest.fixture
async def rabbit(broker_url: str) -> AsyncIterator[RabbitMQBus]:
    name = uuid.uuid4().hex[:8]
    bus = RabbitMQBus(broker_url, exchange=f"test.{name}", queue_prefix=f"test.{name}")
    await bus.start()
    yield bus
    await bus.close()
    await _drop(broker_url, name)


async def _drop(broker_url: str, name: str) -> None:
    queues = [f"test.{name}.commenter", f"test.{name}.commenter.dead"]
    await drop_broker_names(
        broker_url, queues=queues, exchanges=[f"test.{name}", f"test.{name}.dead"]
    )


def _commenter(calls: list[str]) -> ConsumerGroup:
    async def handler(message: Message, uow: UnitOfWork) -> None:
        calls.append(message.id)
        uow.comments.add(
            Comment(
                case_id=uuid.UUID(message.subject or ""),
                body=f"saw {message.type}",
                public=False,
                author_type="system",
            )
        )

    return ConsumerGroup("commenter", ["case.created"], handler, max_attempts=3)


async def _pending_for(container: Container, case_id: str) -> int:
    async with UnitOfWork(container.database) as uow:
        events = await uow.outbox.pending(limit=10_000)
    return sum(1 for e in events if str(e.subject_id) == case_id)


async def _drain(relay: Relay) -> None:
    while await relay.relay_once():
        pass


async def _eventually(check, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("the consumer did not act in time")
        await asyncio.sleep(0.05)


async def test_events_flow_through_rabbitmq_to_a_consumer_once(
    desk: Desk, container: Container, rabbit: RabbitMQBus
) -> None:
    calls: list[str] = []
    await Consumers(container.database, {"commenter": _commenter(calls)}).subscribe_all(rabbit)
    relay = Relay(container.database, rabbit)
    case = await desk.new_case()
    await _drain(relay)
    assert await _pending_for(container, case["id"]) == 0

    async def commented() -> bool:
        detail = await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)
        return [c["body"] for c in detail.json()["comments"]] == ["saw case.created"]

    await _eventually(commented)


async def test_while_the_broker_is_away_events_wait_and_then_flow(
    desk: Desk, container: Container, broker_url: str
) -> None:
    name = uuid.uuid4().hex[:8]
    away = RabbitMQBus(broker_url, exchange=f"test.{name}", queue_prefix=f"test.{name}")
    await away.start()
    calls: list[str] = []
    await Consumers(container.database, {"commenter": _commenter(calls)}).subscribe_all(away)
    await away.close()  # the connection is gone: publishing must fail, not lose events
    case = await desk.new_case()
    with pytest.raises(BusUnavailable):
        await Relay(container.database, away).relay_once()
    assert await _pending_for(container, case["id"]) == 2

    back = RabbitMQBus(broker_url, exchange=f"test.{name}", queue_prefix=f"test.{name}")
    await back.start()
    try:
        await Consumers(container.database, {"commenter": _commenter(calls)}).subscribe_all(back)
        await _drain(Relay(container.database, back))
        assert await _pending_for(container, case["id"]) == 0

        async def handled() -> bool:
            return any(True for _ in calls)

        await _eventually(handled)
    finally:
        await back.close()
        await _drop(broker_url, name)


async def test_a_broker_outage_holds_events_back_and_loses_none(
    desk: Desk, container: Container, broker_url: str
) -> None:
    from urllib.parse import urlsplit

    from tests.support.proxy import CuttableProxy

    target = urlsplit(broker_url)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    name = uuid.uuid4().hex[:8]
    via_proxy = broker_url.replace(f":{target.port or 5672}", f":{proxy.port}")
    bus = RabbitMQBus(
        via_proxy, exchange=f"test.{name}", queue_prefix=f"test.{name}", confirm_timeout=2.0
    )
    await bus.start()
    calls: list[str] = []
    await Consumers(container.database, {"commenter": _commenter(calls)}).subscribe_all(bus)
    relay = Relay(container.database, bus)
    try:
        await _drain(relay)
        await proxy.cut()
        during = await desk.new_case()  # commits go on while the broker is away
        with pytest.raises(BusUnavailable):
            await relay.relay_once()
        assert await _pending_for(container, during["id"]) == 2
        await proxy.restore()

        async def relayed() -> bool:
            try:
                await _drain(relay)
            except BusUnavailable:
                return False  # still reconnecting
            return await _pending_for(container, during["id"]) == 0

        await _eventually(relayed, seconds=30)

        async def commented() -> bool:
            detail = await desk.http.get(f"/api/v1/cases/{during['id']}", headers=desk.headers)
            return [c["body"] for c in detail.json()["comments"]] == ["saw case.created"]

        await _eventually(commented, seconds=30)
    finally:
        await bus.close()
        await proxy.cut()
        await _drop(broker_url, name)
