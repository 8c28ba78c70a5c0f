"""Runs the background work of one process: bus, consumer groups and relay.

Each loop (relay, scheduler, housekeeping, mailboxes' IDLE) survives the errors of its own
work. Should one end anyway, that is logged at once, ``casedesk_background_loop_up`` drops to 0 and
``stopped()`` names it: ``/readyz`` then answers 503, and ``casedesk worker`` exits so that
its supervisor starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Mapping
from datetime import timedelta
from typing import Any

from prometheus_client import Gauge

from casedesk.kit.logging import get_logger
from casedesk.platform.mailbox_idle import MailboxWatcher
from casedesk.store.bus.base import Bus
from casedesk.store.bus.inprocess import InProcessBus
from casedesk.store.bus.rabbitmq import RabbitMQBus
from casedesk.store.database import Database
from casedesk.worker.consumers import ConsumerGroup, Consumers
from casedesk.worker.housekeeping import Housekeeping
from casedesk.worker.relay import Relay
from casedesk.worker.scheduler import JobHandler, Scheduler

LOOP_UP = Gauge(
    "casedesk_background_loop_up",
    "1 while a background loop runs, 0 once it has stopped",
    ["loop"],
    multiprocess_mode="livemin",
)
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
        watcher: MailboxWatcher | None = None,
        job_lease: timedelta = timedelta(seconds=60),
        job_concurrency: int = 1,
    ) -> None:
        self.bus = bus
        self.housekeeping = housekeeping
        self.watcher = watcher
        self.consumers = Consumers(database, groups)
        self.relay = Relay(database, bus)
        self.scheduler = Scheduler(database, jobs, lease=job_lease, concurrency=job_concurrency)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped: dict[str, str] = {}
        self.failed = asyncio.Event()
        """Set when a loop has ended before ``stop()`` was called."""

    async def start(self) -> None:
        await self.bus.start()
        await self.consumers.subscribe_all(self.bus)
        loops = {"relay": self.relay.run(self._stop), "scheduler": self.scheduler.run(self._stop)}
        if self.housekeeping is not None:
            loops["housekeeping"] = self.housekeeping.run(self._stop)
        if self.watcher is not None:
            loops["mailbox-idle"] = self.watcher.run(self._stop)
        self._tasks = [
            asyncio.create_task(self._watched(name, loop), name=f"casedesk-{name}")
            for name, loop in loops.items()
        ]
        log.info("background work started", groups=sorted(self.consumers.groups))

    def stopped(self) -> dict[str, str]:
        """The loops that ended before they were asked to, and why."""
        return dict(self._stopped)

    async def _watched(self, name: str, loop: Coroutine[Any, Any, None]) -> None:
        LOOP_UP.labels(name).set(1)
        try:
            await loop
            why = "it returned"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"[:500]
            log.exception("background loop stopped", loop=name)
        finally:
            LOOP_UP.labels(name).set(0)
        if not self._stop.is_set():
            log.error("background loop ended before it was stopped", loop=name, reason=why)
            self._stopped[name] = why
            self.failed.set()

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.bus.close()
        log.info("background work stopped")
