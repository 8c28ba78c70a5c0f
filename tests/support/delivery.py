"""Event delivery for tests: relay committed events to some consumer groups, on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from casedesk.bootstrap import Container
from casedesk.store.bus.inprocess import InProcessBus
from casedesk.worker.consumers import ConsumerGroup, Consumers
from casedesk.worker.relay import Relay

Settle = Callable[[], Awaitable[None]]


@asynccontextmanager
async def delivering_to(container: Container, *groups: ConsumerGroup) -> AsyncIterator[Settle]:
    """An in-process bus with ``groups`` subscribed, and ``settle()``, which relays every
    committed event and returns once the groups handled them. Events committed before this
    opens (earlier tests') are relayed first, to no group."""
    bus = InProcessBus(retry_delay=0.001)
    await bus.start()
    relay = Relay(container.database, bus)
    while await relay.relay_once():
        pass
    await Consumers(container.database, {group.name: group for group in groups}).subscribe_all(bus)

    async def settle() -> None:
        while await relay.relay_once():
            pass

    try:
        yield settle
    finally:
        await bus.close()
