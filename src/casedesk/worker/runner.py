"""Runs the background work of one process: bus, consumer groups and relay."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta

from casedesk.kit.logging import get_logger
from casedesk.store.bus.base import Bus
from casedesk.store.bus.inprocess import InProcessBus
from casedesk.store.bus.rabbitmq import RabbitMQBus
from casedesk.store.database import Database
from casedesk.worker.consumers import ConsumerGroup, Consumers
from casedesk.worker.housekeeping import Housekeeping
from casedesk.worker.relay import Relay
from casedesk.worker.scheduler import JobHandler, Scheduler

log = get_logger(__name__)


def make_bus(broker_url: str | None, namespace: str = "casedesk") -> Bus:
    if broker_url is None:
        return InProcessBus()
    return RabbitMQBus(broker_url, exchange=f"{namespace}.events", queue_prefix=namespace)


class Background:
    """Start with ``start()``; ``stop()`` finishes the batch in hand and closes the bus."""

    def __init__(
        self,
        database: Database,
        bus: Bus,
        groups: Mapping[str, ConsumerGroup],
        jobs: Mapping[str, JobHandler],
        housekeeping: Housekeeping | None = None,
        *,
        job_lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self.bus = bus
        self.housekeeping = housekeeping
        self.consumers = Consumers(database, groups)
        self.relay = Relay(database, bus)
        self.scheduler = Scheduler(database, jobs, lease=job_lease)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.bus.start()
        await self.consumers.subscribe_all(self.bus)
        self._tasks = [
            asyncio.create_task(self.relay.run(self._stop), name="casedesk-relay"),
            asyncio.create_task(self.scheduler.run(self._stop), name="casedesk-scheduler"),
        ]
        if self.housekeeping is not None:
            self._tasks.append(
                asyncio.create_task(self.housekeeping.run(self._stop), name="casedesk-housekeeping")
            )
        log.info("background work started", groups=sorted(self.consumers.groups))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.bus.close()
        log.info("background work stopped")
