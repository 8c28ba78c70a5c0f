"""The RabbitMQ bus: confirmed publishing to a topic exchange, one quorum queue per group.

Every event is published persistent to a durable topic exchange with its type as routing
key, and ``publish`` returns only once the broker has confirmed each one. Every consumer
group owns a durable quorum queue ``{prefix}.{group}`` bound with the group's type patterns.
A handler that raises has its message requeued; on the last attempt the message is published,
with the error, to ``{prefix}.{group}.dead`` through the ``{exchange}.dead`` exchange and then
acknowledged. The queue's ``x-delivery-limit`` makes the broker dead-letter the message itself
should a consumer keep dying before it can do that. Either way every dead message passes
through the dead queue, and the bus drains that queue into the dead-letter sink (which keeps
them in SQL for people to see), so a message the broker gave up on is not only in the broker.

The attempt number comes from the ``x-delivery-count`` header that quorum queues keep; a
message requeued because its channel closed (shutdown, lost connection) counts as an attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
    ConsumerTag,
    HeadersType,
)

from casedesk.kit.logging import get_logger
from casedesk.store.bus.base import Bus, BusUnavailable, DeadLetterSink, Message, Subscription

log = get_logger(__name__)

CONTENT_TYPE = "application/cloudevents+json"
DELIVERY_COUNT = "x-delivery-count"
DEAD_ERROR = "x-casedesk-error"
DEAD_ATTEMPTS = "x-casedesk-attempts"
SINK_RETRY_SECONDS = 1.0

# What "the broker is not there" looks like: refused or lost connections, a channel used
# after its connection dropped, and a round trip that outlived its deadline.
UNREACHABLE = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aio_pika.exceptions.AMQPError,
    ConnectionError,
    OSError,
    TimeoutError,
)


class MalformedMessage(ValueError):
    """A delivery lacks what ``publish`` always sets; it cannot become a Message."""


@dataclass(frozen=True, slots=True)
class _Consumer:
    channel: AbstractChannel
    queue: AbstractQueue
    tag: ConsumerTag


class RabbitMQBus(Bus):
    def __init__(
        self,
        url: str,
        *,
        exchange: str = "casedesk.events",
        queue_prefix: str = "casedesk",
        confirm_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.exchange_name = exchange
        self.dead_exchange_name = f"{exchange}.dead"
        self.queue_prefix = queue_prefix
        self.confirm_timeout = confirm_timeout
        """Deadline of every broker round trip: a confirm, connecting, a declaration."""
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._dead_exchange: AbstractExchange | None = None
        self._consumers: list[_Consumer] = []
        self._running: set[asyncio.Task[None]] = set()
        self._closing = False

    def queue_name(self, group: str) -> str:
        return f"{self.queue_prefix}.{group}"

    def dead_queue_name(self, group: str) -> str:
        return f"{self.queue_prefix}.{group}.dead"

    async def start(self) -> None:
        try:
            async with asyncio.timeout(self.confirm_timeout):
                self._connection = await aio_pika.connect_robust(
                    self.url, timeout=self.confirm_timeout
                )
                self._publisher = await self._connection.channel(publisher_confirms=True)
                self._exchange = await self._publisher.declare_exchange(
                    self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                self._dead_exchange = await self._publisher.declare_exchange(
                    self.dead_exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
                )
        except UNREACHABLE as exc:
            await self._release()
            raise BusUnavailable(f"RabbitMQ at {self._where()} is unreachable: {exc!r}") from exc
        self._closing = False

    async def publish(self, messages: Sequence[Message]) -> None:
        exchange = self._exchange
        if exchange is None:
            raise BusUnavailable("the RabbitMQ bus is not started or already closed")
        # All in flight at once, confirms awaited together. The publishes start in outbox
        # order and the channel sends frames under a FIFO lock, so the broker receives the
        # events in that order.
        pending = [
            asyncio.ensure_future(exchange.publish(_outgoing(m), m.type, mandatory=False))
            for m in messages
        ]
        try:
            async with self._unavailable_on_failure(f"publishing {len(messages)} events"):
                async with asyncio.timeout(self.confirm_timeout):
                    await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()

    async def subscribe(self, subscription: Subscription, on_dead_letter: DeadLetterSink) -> None:
        connection = self._connection
        if connection is None:
            raise BusUnavailable("the RabbitMQ bus is not started or already closed")
        group = subscription.group
        async with (
            self._unavailable_on_failure(f"subscribing {group}"),
            asyncio.timeout(self.confirm_timeout),
        ):
            channel = await connection.channel()
            drain = await connection.channel()
            try:
                queue = await self._declare_group(channel, subscription)
                dead_queue = await drain.get_queue(self.dead_queue_name(group))
                await drain.set_qos(prefetch_count=subscription.prefetch)

                async def on_delivery(incoming: AbstractIncomingMessage) -> None:
                    self._spawn(self._deliver(subscription, incoming))

                async def on_dead(incoming: AbstractIncomingMessage) -> None:
                    self._spawn(self._drain(subscription, on_dead_letter, incoming))

                tag = await queue.consume(on_delivery)
                dead_tag = await dead_queue.consume(on_dead)
            except BaseException:
                await channel.close()
                await drain.close()
                raise
        self._consumers.append(_Consumer(channel, queue, tag))
        self._consumers.append(_Consumer(drain, dead_queue, dead_tag))
        log.info("consuming", group=group, queue=queue.name, types=list(subscription.types))

    async def close(self) -> None:
        """Stop consuming, let in-flight handlers finish, release the connection; idempotent."""
        self._closing = True
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            await self._cancel(consumer)
        while self._running:
            await asyncio.wait(set(self._running))
        for consumer in consumers:
            await consumer.channel.close()
        await self._release()

    async def purge(self, group: str) -> None:
        """Drop every ready message of the group's main and dead-letter queues."""
        connection = self._connection
        if connection is None:
            raise BusUnavailable("the RabbitMQ bus is not started or already closed")
        async with connection.channel() as channel:
            for name in (self.queue_name(group), self.dead_queue_name(group)):
                queue = await channel.get_queue(name)
                await queue.purge()

    async def _declare_group(
        self, channel: AbstractChannel, subscription: Subscription
    ) -> AbstractQueue:
        group = subscription.group
        await channel.set_qos(prefetch_count=subscription.prefetch)
        dead_exchange = await channel.declare_exchange(
            self.dead_exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
        )
        dead_queue = await channel.declare_queue(
            self.dead_queue_name(group), durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead_queue.bind(dead_exchange, routing_key=group)
        queue = await channel.declare_queue(
            self.queue_name(group),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                # The broker counts returns, not deliveries: after max_attempts - 1 requeues
                # the next return dead-letters the message.
                "x-delivery-limit": subscription.max_attempts - 1,
                "x-dead-letter-exchange": self.dead_exchange_name,
                "x-dead-letter-routing-key": group,
            },
        )
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for routing_key in topic_patterns(subscription.types):
            await queue.bind(exchange, routing_key=routing_key)
        return queue

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        if self._closing:
            # Left unacknowledged: the broker requeues it when the channel closes.
            work.close()
            return
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _deliver(self, subscription: Subscription, incoming: AbstractIncomingMessage) -> None:
        group = subscription.group
        try:
            message = _incoming(incoming)
        except MalformedMessage as exc:
            log.error("malformed message dead-lettered", group=group, error=str(exc))
            await _settle(incoming.reject(requeue=False), group)
            return
        try:
            await subscription.handler(message)
        except Exception as exc:  # the bus's failure policy: retry, then dead-letter
            await self._handler_failed(subscription, incoming, message, exc)
            return
        await _settle(incoming.ack(), group)

    async def _handler_failed(
        self,
        subscription: Subscription,
        incoming: AbstractIncomingMessage,
        message: Message,
        exc: Exception,
    ) -> None:
        group = subscription.group
        error = repr(exc)
        log.warning(
            "handler failed", group=group, event_id=message.id, attempt=message.attempt, error=error
        )
        if message.attempt < subscription.max_attempts:
            await _settle(incoming.nack(requeue=True), group)
            return
        dead = _outgoing(message, {DEAD_ERROR: error[:10_000], DEAD_ATTEMPTS: message.attempt})
        exchange = self._dead_exchange
        try:
            if exchange is None:
                raise ConnectionError("the bus is closed")
            async with asyncio.timeout(self.confirm_timeout):
                await exchange.publish(dead, group)
        except UNREACHABLE as publish_exc:
            # Returned instead: one more return and the broker dead-letters it itself.
            log.warning("parking a dead message failed", group=group, error=repr(publish_exc))
            await _settle(incoming.nack(requeue=True), group)
            return
        await _settle(incoming.ack(), group)

    async def _drain(
        self,
        subscription: Subscription,
        on_dead_letter: DeadLetterSink,
        incoming: AbstractIncomingMessage,
    ) -> None:
        """Hand a message of the dead queue to the sink, then let the queue forget it."""
        group = subscription.group
        try:
            message = _dead(incoming, subscription.max_attempts)
        except MalformedMessage as exc:
            log.error("malformed dead message dropped", group=group, error=str(exc))
            await _settle(incoming.ack(), group)
            return
        error = incoming.headers.get(DEAD_ERROR)
        if not isinstance(error, str):
            error = (
                f"the consumer stopped before finishing on each of its {message.attempt} "
                "attempts (it crashed or lost its connection); the broker gave up on it"
            )
        try:
            await on_dead_letter(group, message, error)
        except Exception as exc:  # it stays in the dead queue until the sink takes it
            log.error("dead-letter sink failed", group=group, event_id=message.id, error=repr(exc))
            await asyncio.sleep(SINK_RETRY_SECONDS)
            await _settle(incoming.nack(requeue=True), group)
            return
        await _settle(incoming.ack(), group)

    async def _cancel(self, consumer: _Consumer) -> None:
        try:
            async with asyncio.timeout(self.confirm_timeout):
                await consumer.queue.cancel(consumer.tag)
        except UNREACHABLE as exc:
            # The broker cancels the consumer itself when the channel closes below.
            log.warning("cancelling consumer failed", queue=consumer.queue.name, error=repr(exc))

    async def _release(self) -> None:
        connection = self._connection
        self._connection = self._publisher = self._exchange = None
        if connection is not None:
            await connection.close()

    @asynccontextmanager
    async def _unavailable_on_failure(self, doing: str) -> AsyncIterator[None]:
        try:
            yield
        except aiormq.exceptions.DeliveryError as exc:
            raise BusUnavailable(f"RabbitMQ refused {doing}: {exc!r}") from exc
        except UNREACHABLE as exc:
            raise BusUnavailable(f"RabbitMQ at {self._where()} failed {doing}: {exc!r}") from exc

    def _where(self) -> str:
        url = urlsplit(self.url)
        return f"{url.hostname}:{url.port or 5672}"


def topic_patterns(types: Iterable[str]) -> list[str]:
    """Shell-style type patterns as AMQP topic binding keys, without duplicates.

    A lone ``*`` becomes ``#`` (every type); any other pattern is bound as written, so
    ``case.*`` matches exactly one word after ``case.`` where the shell pattern would
    match several.
    """
    return list(dict.fromkeys("#" if pattern == "*" else pattern for pattern in types))


def _outgoing(message: Message, extra: HeadersType | None = None) -> aio_pika.Message:
    headers: HeadersType = {
        "tenant_id": message.tenant_id,
        "sequence": message.sequence,
        "traceparent": message.traceparent,
        "subject_type": message.subject_type,
        **(extra or {}),
    }
    if message.subject is not None:
        headers["subject"] = message.subject
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.id,
        type=message.type,
    )


def _incoming(incoming: AbstractIncomingMessage) -> Message:
    headers = incoming.headers
    subject = headers.get("subject")
    if incoming.message_id is None or incoming.routing_key is None:
        raise MalformedMessage("message_id or routing key missing")
    if subject is not None and not isinstance(subject, str):
        raise MalformedMessage(f"subject is {type(subject).__name__}")
    return Message(
        id=incoming.message_id,
        type=incoming.routing_key,
        tenant_id=_text(headers, "tenant_id"),
        subject=subject,
        sequence=_integer(headers, "sequence"),
        traceparent=_text(headers, "traceparent"),
        body=incoming.body,
        attempt=1 + _integer(headers, DELIVERY_COUNT, default=0),
        subject_type=_subject_type(headers),
    )


def _dead(incoming: AbstractIncomingMessage, max_attempts: int) -> Message:
    """A message of a dead queue: its routing key is the group, its type a property."""
    if incoming.message_id is None or incoming.type is None:
        raise MalformedMessage("message_id or type missing")
    headers = incoming.headers
    subject = headers.get("subject")
    attempts = headers.get(DEAD_ATTEMPTS, max_attempts)
    return Message(
        id=incoming.message_id,
        type=incoming.type,
        tenant_id=_text(headers, "tenant_id"),
        subject=subject if isinstance(subject, str) else None,
        sequence=_integer(headers, "sequence"),
        traceparent=_text(headers, "traceparent"),
        body=incoming.body,
        attempt=attempts if isinstance(attempts, int) else max_attempts,
        subject_type=_subject_type(headers),
    )


def _subject_type(headers: HeadersType) -> str:
    """Messages published before events had subject types were all about cases."""
    value = headers.get("subject_type", "case")
    return value if isinstance(value, str) else "case"


def _text(headers: HeadersType, key: str) -> str:
    value = headers.get(key)
    if not isinstance(value, str):
        raise MalformedMessage(f"header {key} is {type(value).__name__}, not str")
    return value


def _integer(headers: HeadersType, key: str, *, default: int | None = None) -> int:
    value = headers.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedMessage(f"header {key} is {type(value).__name__}, not int")
    return value


async def _settle(outcome: Awaitable[None], group: str) -> None:
    """Await an ack, nack or reject; when the channel is gone the broker redelivers anyway."""
    try:
        await outcome
    except UNREACHABLE as exc:
        log.warning("settling a delivery failed", group=group, error=repr(exc))
