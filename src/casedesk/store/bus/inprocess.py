"""The embedded bus: delivery happens inside ``publish``, so it is as durable as the outbox.

The relay marks events published only after ``publish`` returns, and ``publish`` returns only
after every subscribed handler has handled each message or given it up to the dead-letter
sink. A crash in between leaves the events unpublished; they are delivered again and the
consumers' processed-event records make that harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from casedesk.kit.logging import get_logger
from casedesk.store.bus.base import Bus, BusUnavailable, DeadLetterSink, Message, Subscription

log = get_logger(__name__)


class InProcessBus(Bus):
    def __init__(self, *, retry_delay: float = 0.05) -> None:
        self.retry_delay = retry_delay
        self._subscriptions: list[tuple[Subscription, DeadLetterSink]] = []
        self._open = False

    async def start(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def subscribe(self, subscription: Subscription, on_dead_letter: DeadLetterSink) -> None:
        self._subscriptions.append((subscription, on_dead_letter))

    async def publish(self, messages: Sequence[Message]) -> None:
        if not self._open:
            raise BusUnavailable("the in-process bus is closed")
        for message in messages:
            for subscription, sink in self._subscriptions:
                if subscription.wants(message.type):
                    await self._deliver(subscription, sink, message)

    async def _deliver(
        self, subscription: Subscription, sink: DeadLetterSink, message: Message
    ) -> None:
        while True:
            try:
                await subscription.handler(message)
                return
            except Exception as exc:
                log.warning(
                    "handler failed",
                    group=subscription.group,
                    event_id=message.id,
                    attempt=message.attempt,
                    error=repr(exc),
                )
                if message.attempt >= subscription.max_attempts:
                    await sink(subscription.group, message, repr(exc))
                    return
                message = message.retried()
                await asyncio.sleep(self.retry_delay * message.attempt)
