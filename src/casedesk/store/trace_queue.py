"""The queue between trace flushers and the SQL persister: batches of trace documents.

It absorbs bursts so that SQL is written at the persister's pace, not the callers'. One
message carries one batch (a JSON array), which keeps the broker's work per record small.

- ``InProcessTraceQueue``: the embedded mode; a bounded asyncio queue in the one process.
- ``RabbitMQTraceQueue``: a durable quorum queue ``{namespace}.traces``, published with
  confirms; a batch is acknowledged only after the persister committed it, so a persister
  that dies mid-batch gets it again (the SQL write is idempotent by record id).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from casedesk.kit.logging import get_logger
from casedesk.store.bus.base import BusUnavailable
from casedesk.store.bus.rabbitmq import UNREACHABLE

Batch = list[dict[str, Any]]
BatchHandler = Callable[[Batch], Awaitable[None]]
log = get_logger(__name__)


class TraceQueue(Protocol):
    async def start(self) -> None: ...

    async def publish(self, batch: Batch) -> None:
        """Return once the batch is durably queued; raise ``BusUnavailable`` if it is not."""

    async def consume(self, handler: BatchHandler, *, prefetch: int) -> None:
        """Deliver batches to ``handler`` in the background until ``close``; a batch whose
        handler raised is delivered again."""

    async def close(self) -> None: ...


class InProcessTraceQueue:
    def __init__(self, max_batches: int = 1000) -> None:
        self._queue: asyncio.Queue[Batch] = asyncio.Queue(max_batches)
        self._consumer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        return None

    async def publish(self, batch: Batch) -> None:
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            raise BusUnavailable("the in-process trace queue is full") from None

    async def consume(self, handler: BatchHandler, *, prefetch: int) -> None:
        self._consumer = asyncio.create_task(self._run(handler))

    async def _run(self, handler: BatchHandler) -> None:
        while True:
            batch = await self._queue.get()
            while True:
                try:
                    await handler(batch)
                    break
                except Exception:  # kept and tried again, as a broker would redeliver it
                    log.exception("trace batch failed; trying again", records=len(batch))
                    await asyncio.sleep(1.0)

    def pending(self) -> int:
        return self._queue.qsize()

    async def close(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer


class RabbitMQTraceQueue:
    def __init__(self, url: str, *, namespace: str, confirm_timeout: float = 10.0) -> None:
        self.url = url
        self.queue_name = f"{namespace}.traces"
        self.confirm_timeout = confirm_timeout
        self._connection: AbstractRobustConnection | None = None
        self._publisher: aio_pika.abc.AbstractChannel | None = None
        self._consumer_channel: aio_pika.abc.AbstractChannel | None = None
        self._consumer: tuple[aio_pika.abc.AbstractQueue, str] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._publisher is not None:
            return
        try:
            async with asyncio.timeout(self.confirm_timeout):
                self._connection = await aio_pika.connect_robust(
                    self.url, timeout=self.confirm_timeout
                )
                self._publisher = await self._connection.channel(publisher_confirms=True)
                await self._declare(self._publisher)
        except UNREACHABLE as exc:
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    await self._connection.close()
            self._connection = self._publisher = None
            raise BusUnavailable(f"RabbitMQ is unreachable for traces: {exc!r}") from exc

    async def _declare(self, channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractQueue:
        return await channel.declare_queue(
            self.queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )

    async def publish(self, batch: Batch) -> None:
        await self.start()  # a broker that was down at start is looked for again
        channel = self._publisher
        assert channel is not None
        message = aio_pika.Message(
            orjson.dumps(batch),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            async with asyncio.timeout(self.confirm_timeout):
                await channel.default_exchange.publish(message, routing_key=self.queue_name)
        except UNREACHABLE as exc:
            raise BusUnavailable(f"publishing {len(batch)} trace records failed: {exc!r}") from exc

    async def consume(self, handler: BatchHandler, *, prefetch: int) -> None:
        if self._connection is None:
            raise BusUnavailable("the trace queue is not started")
        channel = self._consumer_channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await self._declare(channel)

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            task = asyncio.create_task(self._handle(handler, incoming))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

        self._consumer = (queue, await queue.consume(on_message))

    async def _handle(self, handler: BatchHandler, incoming: AbstractIncomingMessage) -> None:
        batch: Batch = orjson.loads(incoming.body)
        try:
            await handler(batch)
        except Exception:  # the broker delivers it again; the write is idempotent
            log.exception("trace batch failed; returned to the queue", records=len(batch))
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                await incoming.nack(requeue=True)
            return
        with contextlib.suppress(Exception):  # unacked, it comes back: still harmless
            await incoming.ack()

    async def depth(self) -> int:
        """Batches waiting in the broker (for the benchmark and operators)."""
        if self._publisher is None:
            return 0
        declared = await self._publisher.declare_queue(self.queue_name, passive=True)
        return declared.declaration_result.message_count or 0

    async def close(self) -> None:
        """Stop taking batches, let the ones in hand finish, then disconnect."""
        if self._consumer is not None:
            queue, tag = self._consumer
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        while self._running:
            await asyncio.wait(set(self._running))
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = self._publisher = self._consumer_channel = None
        self._consumer = None
