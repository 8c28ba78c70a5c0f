"""The RabbitMQ bus against a real broker.

Each test declares its own exchange and queues under a random name and deletes them at the
end, so tests neither see each other's messages nor leave queues behind.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from casedesk.store.bus.base import BusUnavailable, DeadLetterSink, Handler, Message, Subscription
from casedesk.store.bus.rabbitmq import RabbitMQBus
from tests.support.services import drop_broker_names

WAIT = 5.0
"""Seconds any expected delivery may take before the test fails instead of hanging."""
QUIET = 0.5
"""Seconds of silence that count as 'nothing more arrives'."""
T = TypeVar("T")


def event(type_: str, sequence: int, *, subject: str | None = "case-1") -> Message:
    return Message(
        id=str(uuid.uuid4()),
        type=type_,
        tenant_id=str(uuid.uuid4()),
        subject=subject,
        sequence=sequence,
        traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
        body=f'{{"type": "{type_}", "note": "naïve café"}}'.encode(),
    )


@dataclass
class Recorder:
    """Lets a test wait, with a deadline, until what was recorded satisfies a condition."""

    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def record(self, into: list[T], item: T) -> None:
        async with self.changed:
            into.append(item)
            self.changed.notify_all()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(condition), WAIT)


@dataclass
class Inbox(Recorder):
    """A handler that records every delivery and can be told to fail some attempts."""

    fail_until_attempt: int = 0
    delay: float = 0.0
    received: list[Message] = field(default_factory=list)
    handled: list[Message] = field(default_factory=list)

    async def handle(self, message: Message) -> None:
        await self.record(self.received, message)
        if message.attempt <= self.fail_until_attempt:
            raise RuntimeError(f"attempt {message.attempt} fails")
        await asyncio.sleep(self.delay)
        await self.record(self.handled, message)


@dataclass
class DeadLetters(Recorder):
    given_up: list[tuple[str, Message, str]] = field(default_factory=list)

    async def __call__(self, group: str, message: Message, error: str) -> None:
        await self.record(self.given_up, (group, message, error))


@dataclass
class Broker:
    """Buses and raw channels on one test's private exchange and queue prefix."""

    url: str
    exchange: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:12]}.events")
    prefix: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:12]}")
    groups: set[str] = field(default_factory=set)
    buses: list[RabbitMQBus] = field(default_factory=list)

    async def bus(self) -> RabbitMQBus:
        bus = RabbitMQBus(self.url, exchange=self.exchange, queue_prefix=self.prefix)
        self.buses.append(bus)
        await bus.start()
        return bus

    async def subscribe(
        self,
        bus: RabbitMQBus,
        group: str,
        types: list[str],
        handler: Handler,
        dead_letters: DeadLetterSink,
        *,
        max_attempts: int = 5,
    ) -> None:
        self.groups.add(group)
        subscription = Subscription(group, types, handler, max_attempts=max_attempts)
        await asyncio.wait_for(bus.subscribe(subscription, dead_letters), WAIT)

    @asynccontextmanager
    async def channel(self) -> AsyncIterator[AbstractChannel]:
        connection = await aio_pika.connect(self.url)
        async with connection, connection.channel() as channel:
            yield channel

    async def ready_count(self, queue: str) -> int:
        async with self.channel() as channel:
            declared = await channel.declare_queue(queue, passive=True)
            count = declared.declaration_result.message_count
            assert count is not None
            return count

    async def get(self, queue: str) -> AbstractIncomingMessage | None:
        async with self.channel() as channel:
            declared = await channel.get_queue(queue)
            return await declared.get(no_ack=True, fail=False)

    async def remove_everything(self) -> None:
        for bus in self.buses:
            await bus.close()
        await drop_broker_names(
            self.url,
            queues=[f"{self.prefix}.{g}{suffix}" for g in self.groups for suffix in ("", ".dead")],
            exchanges=[self.exchange, f"{self.exchange}.dead"],
        )


@pytest.fixture
async def broker(broker_url: str) -> AsyncIterator[Broker]:
    broker = Broker(broker_url)
    yield broker
    await broker.remove_everything()


async def test_a_group_receives_its_types_in_order_with_everything_intact(broker: Broker) -> None:
    bus = await broker.bus()
    inbox, dead = Inbox(), DeadLetters()
    await broker.subscribe(bus, "cases", ["case.*"], inbox.handle, dead)
    created = event("case.created", 1)
    updated = event("case.updated", 2, subject=None)
    commented = event("comment.added", 3)

    await asyncio.wait_for(bus.publish([created, updated, commented]), WAIT)
    await inbox.until(lambda: len(inbox.handled) == 2)
    await asyncio.sleep(QUIET)

    assert inbox.received == [created, updated]
    assert dead.given_up == []


async def test_every_group_gets_every_message_and_acked_ones_stay_handled(
    broker: Broker,
) -> None:
    bus = await broker.bus()
    audit, search, dead = Inbox(), Inbox(), DeadLetters()
    await broker.subscribe(bus, "audit", ["*"], audit.handle, dead)
    await broker.subscribe(bus, "search", ["*"], search.handle, dead)
    messages = [event("case.created", 1), event("comment.added", 2)]

    await asyncio.wait_for(bus.publish(messages), WAIT)
    await audit.until(lambda: len(audit.handled) == 2)
    await search.until(lambda: len(search.handled) == 2)
    await bus.close()

    assert audit.handled == search.handled == messages
    assert await broker.ready_count(f"{broker.prefix}.audit") == 0
    restarted = await broker.bus()
    audit_again, search_again = Inbox(), Inbox()
    await broker.subscribe(restarted, "audit", ["*"], audit_again.handle, dead)
    await broker.subscribe(restarted, "search", ["*"], search_again.handle, dead)
    await asyncio.sleep(QUIET)
    assert audit_again.received == search_again.received == []


async def test_a_failing_handler_is_retried_until_it_succeeds(broker: Broker) -> None:
    bus = await broker.bus()
    inbox, dead = Inbox(fail_until_attempt=2), DeadLetters()
    await broker.subscribe(bus, "flaky", ["case.*"], inbox.handle, dead)
    message = event("case.created", 1)

    await asyncio.wait_for(bus.publish([message]), WAIT)
    await inbox.until(lambda: len(inbox.handled) == 1)
    await asyncio.sleep(QUIET)

    assert [received.attempt for received in inbox.received] == [1, 2, 3]
    assert {received.id for received in inbox.received} == {message.id}
    assert dead.given_up == []
    assert await broker.get(f"{broker.prefix}.flaky.dead") is None


async def test_a_message_is_dead_lettered_after_max_attempts(broker: Broker) -> None:
    bus = await broker.bus()
    inbox, dead = Inbox(fail_until_attempt=99), DeadLetters()
    await broker.subscribe(bus, "broken", ["case.*"], inbox.handle, dead, max_attempts=3)
    message = event("case.created", 1)

    await asyncio.wait_for(bus.publish([message]), WAIT)
    await dead.until(lambda: len(dead.given_up) == 1)
    await asyncio.sleep(QUIET)

    assert [received.attempt for received in inbox.received] == [1, 2, 3]
    [(group, given_up, error)] = dead.given_up
    assert (group, given_up) == ("broken", message.retried().retried())
    assert error == repr(RuntimeError("attempt 3 fails"))
    # It went through the broker's dead queue, which the bus drained into the sink.
    assert await broker.ready_count(f"{broker.prefix}.broken.dead") == 0
    assert await broker.ready_count(f"{broker.prefix}.broken") == 0


async def test_a_message_whose_consumer_keeps_dying_reaches_the_sink(broker: Broker) -> None:
    first = await broker.bus()
    inbox, dead = Inbox(), DeadLetters()
    await broker.subscribe(first, "fragile", ["case.*"], inbox.handle, dead, max_attempts=3)
    await first.close()  # the queues stay; nobody consumes
    message = event("case.created", 7)
    publisher = await broker.bus()
    await asyncio.wait_for(publisher.publish([message]), WAIT)
    queue = f"{broker.prefix}.fragile"
    for _ in range(3):  # a consumer takes it and dies before settling it, three times
        connection = await aio_pika.connect(broker.url)
        channel = await connection.channel()
        taken = await (await channel.get_queue(queue)).get(no_ack=False, fail=False)
        assert taken is not None
        await connection.close()
    assert await broker.ready_count(queue) == 0  # the broker dead-lettered it itself
    second = await broker.bus()
    await broker.subscribe(second, "fragile", ["case.*"], inbox.handle, dead, max_attempts=3)
    await dead.until(lambda: len(dead.given_up) == 1)
    [(group, given_up, error)] = dead.given_up
    assert group == "fragile"
    assert (given_up.id, given_up.type, given_up.body) == (message.id, message.type, message.body)
    assert given_up.tenant_id == message.tenant_id
    assert "consumer stopped" in error
    assert inbox.received == []


async def test_a_failing_sink_leaves_the_message_in_the_dead_queue(broker: Broker) -> None:
    bus = await broker.bus()
    inbox = Inbox(fail_until_attempt=99)
    calls: list[str] = []

    async def broken_sink(group: str, message: Message, error: str) -> None:
        calls.append(message.id)
        raise RuntimeError("database down")

    await broker.subscribe(bus, "sinkless", ["case.*"], inbox.handle, broken_sink, max_attempts=1)
    message = event("case.created", 1)
    await asyncio.wait_for(bus.publish([message]), WAIT)
    deadline = asyncio.get_running_loop().time() + WAIT
    while len(calls) < 2:  # tried, failed, and tried again later
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await bus.close()
    assert await broker.ready_count(f"{broker.prefix}.sinkless.dead") == 1


async def test_an_unreachable_or_unstarted_bus_is_unavailable() -> None:
    unreachable = RabbitMQBus("amqp://guest:guest@127.0.0.1:1/", confirm_timeout=2)
    with pytest.raises(BusUnavailable, match=r"127\.0\.0\.1:1 is unreachable"):
        await asyncio.wait_for(unreachable.start(), WAIT)
    with pytest.raises(BusUnavailable):
        await unreachable.publish([event("case.created", 1)])

    never_started = RabbitMQBus("amqp://guest:guest@127.0.0.1:5672/")
    with pytest.raises(BusUnavailable):
        await never_started.publish([event("case.created", 1)])
    with pytest.raises(BusUnavailable):
        await never_started.subscribe(Subscription("nobody", ["*"], Inbox().handle), DeadLetters())
    await never_started.close()


async def test_a_message_the_broker_refuses_is_unavailable(broker: Broker) -> None:
    bus = await broker.bus()
    async with broker.channel() as channel:
        # A queue that is always full and refuses publishes makes the broker NACK.
        full = await channel.declare_queue(
            exclusive=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        )
        await full.bind(broker.exchange, routing_key="#")

        with pytest.raises(BusUnavailable, match="refused"):
            await asyncio.wait_for(bus.publish([event("case.created", 1)]), WAIT)


async def test_publishing_after_close_is_unavailable(broker: Broker) -> None:
    bus = await broker.bus()
    await bus.close()
    await bus.close()

    with pytest.raises(BusUnavailable):
        await bus.publish([event("case.created", 1)])


async def test_close_waits_for_the_handler_in_flight(broker: Broker) -> None:
    bus = await broker.bus()
    inbox, dead = Inbox(delay=0.3), DeadLetters()
    await broker.subscribe(bus, "slow", ["case.*"], inbox.handle, dead)
    message = event("case.created", 1)

    await asyncio.wait_for(bus.publish([message]), WAIT)
    await inbox.until(lambda: len(inbox.received) == 1)
    await asyncio.wait_for(bus.close(), WAIT)

    assert inbox.handled == [message]
    assert await broker.ready_count(f"{broker.prefix}.slow") == 0


async def test_purge_empties_the_group_queues(broker: Broker) -> None:
    bus = await broker.bus()
    inbox, dead = Inbox(), DeadLetters()
    await broker.subscribe(bus, "idle", ["case.*"], inbox.handle, dead)
    await bus.close()
    bus = await broker.bus()
    await asyncio.wait_for(bus.publish([event("case.created", 1)]), WAIT)
    assert await broker.ready_count(f"{broker.prefix}.idle") == 1

    await bus.purge("idle")

    assert await broker.ready_count(f"{broker.prefix}.idle") == 0
