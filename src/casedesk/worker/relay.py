"""The outbox relay: committed events go to the bus in outbox order, once the bus confirms.

Only the holder of the ``casedesk.relay`` lease relays, so events of one case reach the bus
in the order their transactions wrote them. The bus is called outside any transaction, so
handlers of the in-process bus can write; events are marked published only afterwards,
and a crash in between means they are published again (consumers skip what they saw).
"""

from __future__ import annotations

import asyncio

import orjson
from prometheus_client import Counter, Gauge

from casedesk.domain.events import envelope
from casedesk.kit.aio import pause
from casedesk.kit.logging import get_logger
from casedesk.store.bus.base import Bus, BusUnavailable, Message
from casedesk.store.database import Database
from casedesk.store.leases import Lease
from casedesk.store.models import OutboxEvent
from casedesk.store.unit_of_work import UnitOfWork

RELAYED = Counter("casedesk_relay_events_total", "Outbox events published to the bus")
RELAY_FAILURES = Counter("casedesk_relay_failures_total", "Relay batches the bus refused")
RELAY_LEADER = Gauge("casedesk_relay_leader", "1 while this process holds the relay lease")
log = get_logger(__name__)


def to_message(event: OutboxEvent) -> Message:
    return Message(
        id=str(event.event_id),
        type=event.type,
        tenant_id=str(event.tenant_id),
        subject=str(event.subject_id) if event.subject_id else None,
        sequence=event.id,
        traceparent=event.traceparent,
        body=orjson.dumps(envelope(event)),
    )


class Relay:
    def __init__(
        self,
        database: Database,
        bus: Bus,
        *,
        batch_size: int = 200,
        idle_seconds: float = 0.05,
        retry_seconds: float = 1.0,
    ) -> None:
        self.database = database
        self.bus = bus
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.retry_seconds = retry_seconds
        self.lease = Lease(database, "casedesk.relay")

    async def relay_once(self) -> int:
        """Publish one batch of pending events; returns how many. Raises BusUnavailable."""
        async with UnitOfWork(self.database) as uow:
            events = await uow.outbox.pending(limit=self.batch_size)
        if not events:
            return 0
        try:
            await self.bus.publish([to_message(event) for event in events])
        except BusUnavailable:
            RELAY_FAILURES.inc()
            raise
        async with UnitOfWork(self.database) as uow:
            await uow.begin_write()
            await uow.outbox.mark_published([event.id for event in events])
            await uow.commit()
        RELAYED.inc(len(events))
        return len(events)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; the batch in hand is finished first."""
        try:
            while not stop.is_set():
                if not await self.lease.try_acquire() or not await self.lease.alive():
                    RELAY_LEADER.set(0)
                    await pause(stop, self.retry_seconds)
                    continue
                RELAY_LEADER.set(1)
                try:
                    moved = await self.relay_once()
                except BusUnavailable as exc:
                    log.warning("bus unavailable; events wait in the outbox", error=str(exc))
                    await pause(stop, self.retry_seconds)
                    continue
                if moved < self.batch_size:
                    await pause(stop, self.idle_seconds)
        finally:
            RELAY_LEADER.set(0)
            await self.lease.release()
