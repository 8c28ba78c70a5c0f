"""Housekeeping: the delivery tables do not grow forever.

Every hour, in one process at a time (a lease), rows older than the retention are deleted:

- outbox events already delivered: the feed (``GET /api/v1/events``) keeps that much history;
- consumers' processed-event claims, keyed by event: a redelivery comes within minutes or
  hours, never after the retention. Time rules' claims (``timerule:…``) are kept, since they
  stand for a moment in a case's life that a later change may plan again;
- finished webhook deliveries with their attempts: the delivery log keeps that much history.

Pending work — undelivered events, deliveries still being tried, dead letters — is never
touched. Trace records have their own retention (``CASEDESK_TRACE_RETENTION_DAYS``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from prometheus_client import Counter

from casedesk.kit.aio import pause
from casedesk.kit.clock import utcnow
from casedesk.kit.logging import get_logger
from casedesk.store.database import Database
from casedesk.store.housekeeping import purge_slice
from casedesk.store.leases import Lease
from casedesk.store.models import OutboxEvent, ProcessedEvent, WebhookDelivery
from casedesk.store.unit_of_work import UnitOfWork

PURGED = Counter("casedesk_housekeeping_rows_total", "Rows deleted for their age", ["table"])
log = get_logger(__name__)


def _swept(top_position: int | None) -> list[tuple[str, type[Any], Any, tuple[Any, ...]]]:
    """The tables and what of them may go. The delivered event with the highest position is
    always kept: the relay places new events after it, so positions never go back."""
    delivered: tuple[Any, ...] = (OutboxEvent.published_at.is_not(None),)
    if top_position is not None:
        delivered += (OutboxEvent.position < top_position,)
    return [
        ("outbox_events", OutboxEvent, OutboxEvent.published_at, delivered),
        (
            "processed_events",
            ProcessedEvent,
            ProcessedEvent.processed_at,
            (ProcessedEvent.consumer_group.not_like("timerule:%"),),
        ),
        (
            "webhook_deliveries",
            WebhookDelivery,
            WebhookDelivery.updated_at,
            (WebhookDelivery.status.in_(("succeeded", "failed")),),
        ),
    ]


class Housekeeping:
    def __init__(
        self,
        database: Database,
        *,
        keep: timedelta,
        every: timedelta = timedelta(hours=1),
        step: timedelta = timedelta(minutes=5),
    ) -> None:
        self.database = database
        self.keep = keep
        self.every = every
        self.step = step
        """How much of a table's history one transaction deletes at most."""
        self.lease = Lease(database, "casedesk.housekeeping")

    async def sweep_once(self) -> dict[str, int]:
        """Delete what is older than the retention in every swept table; counts by table."""
        cutoff = utcnow() - self.keep
        async with UnitOfWork(self.database) as uow:
            top = await uow.outbox.top_position()
        counts: dict[str, int] = {}
        for table, model, age, where in _swept(top):
            total = 0
            while True:
                async with UnitOfWork(self.database) as uow:
                    await uow.begin_write()
                    deleted = await purge_slice(
                        uow.session, model, age, cutoff, step=self.step, where=where
                    )
                    await uow.commit()
                if not deleted:
                    break
                total += deleted
            PURGED.labels(table).inc(total)
            counts[table] = total
        log.info("housekeeping swept", older_than=cutoff.isoformat(), **counts)
        return counts

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.lease.try_acquire():
                    try:
                        await self.sweep_once()
                    finally:
                        await self.lease.release()
            except Exception:  # a database hiccup must not end the worker
                log.exception("housekeeping failed")
            await pause(stop, self.every.total_seconds())
