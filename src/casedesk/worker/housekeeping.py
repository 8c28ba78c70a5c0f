"""Housekeeping: the delivery, job and idempotency tables do not grow forever.

Every hour, in one process at a time (a lease), rows older than their retention are deleted.
With ``CASEDESK_EVENT_RETENTION_DAYS`` (``keep``; none: kept forever):

- outbox events already delivered: the feed (``GET /api/v1/events``) keeps that much history;
- consumers' processed-event claims, keyed by event: a redelivery comes within minutes or
  hours, never after the retention. Time rules' claims (``timerule:…``) are kept, since they
  stand for a moment in a case's life that a later change may plan again;
- finished webhook deliveries with their attempts: the delivery log keeps that much history;
- finished scheduled jobs (done, cancelled, failed): scheduling their key again simply adds
  a new job, and a time rule that plans a purged job again still acts once per moment,
  by its ``timerule:…`` claim.

With ``CASEDESK_IDEMPOTENCY_HOURS`` (``idempotency``, 24 by default, as Stripe keeps keys):
the stored responses of ``Idempotency-Key`` requests; a key reused after its record is gone
is a new request.

On SQLite the same hourly round refreshes the planner's statistics (``ANALYZE``, sampled),
as the tables grow. With a ``BlobSweeper``, the round also sweeps the attachments' blobs no
row refers to any more, once per ``blob_every`` (``CASEDESK_BLOB_SWEEP_INTERVAL_HOURS``) in
each process that holds the lease.

Pending work — undelivered events, deliveries still being tried, jobs pending or running,
dead letters — is never touched. Trace records have their own retention
(``CASEDESK_TRACE_RETENTION_DAYS``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter

from casedesk.kit.aio import pause
from casedesk.kit.clock import utcnow
from casedesk.kit.logging import get_logger
from casedesk.store.blob_sweep import BlobSweeper
from casedesk.store.database import Database
from casedesk.store.housekeeping import purge_slice
from casedesk.store.leases import Lease
from casedesk.store.models import (
    IdempotencyRecord,
    OutboxEvent,
    ProcessedEvent,
    ScheduledJob,
    WebhookDelivery,
)
from casedesk.store.unit_of_work import UnitOfWork

PURGED = Counter("casedesk_housekeeping_rows_total", "Rows deleted for their age", ["table"])
FINISHED_JOBS = ("done", "cancelled", "failed")
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Sweep:
    """What of one table may go: rows whose ``age`` is before ``cutoff`` and match ``where``."""

    table: str
    model: type[Any]
    age: Any
    cutoff: datetime
    where: tuple[Any, ...] = ()


def _event_sweeps(cutoff: datetime, top_position: int | None) -> list[_Sweep]:
    """The tables kept for the event retention. The delivered event with the highest
    position is always kept: the relay places new events after it, so positions never go
    back."""
    delivered: tuple[Any, ...] = (OutboxEvent.published_at.is_not(None),)
    if top_position is not None:
        delivered += (OutboxEvent.position < top_position,)
    return [
        _Sweep("outbox_events", OutboxEvent, OutboxEvent.published_at, cutoff, delivered),
        _Sweep(
            "processed_events",
            ProcessedEvent,
            ProcessedEvent.processed_at,
            cutoff,
            (ProcessedEvent.consumer_group.not_like("timerule:%"),),
        ),
        _Sweep(
            "webhook_deliveries",
            WebhookDelivery,
            WebhookDelivery.updated_at,
            cutoff,
            (WebhookDelivery.status.in_(("succeeded", "failed")),),
        ),
        _Sweep(
            "scheduled_jobs",
            ScheduledJob,
            ScheduledJob.updated_at,
            cutoff,
            (ScheduledJob.status.in_(FINISHED_JOBS),),
        ),
    ]


class Housekeeping:
    def __init__(
        self,
        database: Database,
        *,
        keep: timedelta | None,
        idempotency: timedelta = timedelta(hours=24),
        every: timedelta = timedelta(hours=1),
        step: timedelta = timedelta(minutes=5),
        blobs: BlobSweeper | None = None,
        blob_every: timedelta = timedelta(days=1),
    ) -> None:
        self.database = database
        self.keep = keep
        """The event retention; None keeps events, claims, deliveries and jobs forever."""
        self.idempotency = idempotency
        self.every = every
        self.step = step
        """How much of a table's history one transaction deletes at most."""
        self.lease = Lease(database, "casedesk.housekeeping")
        self.blobs = blobs
        """Sweeps unreferenced blobs every ``blob_every``; None: never here."""
        self.blob_every = blob_every
        self._blobs_swept_at: datetime | None = None

    async def sweep_blobs_when_due(self) -> bool:
        """Sweep the blobs if the last sweep of this process is ``blob_every`` ago."""
        now = utcnow()
        if self.blobs is None:
            return False
        if self._blobs_swept_at is not None and now - self._blobs_swept_at < self.blob_every:
            return False
        self._blobs_swept_at = now
        await self.blobs.sweep()
        return True

    async def _sweeps(self) -> list[_Sweep]:
        now = utcnow()
        sweeps: list[_Sweep] = []
        if self.keep is not None:
            async with UnitOfWork(self.database) as uow:
                top = await uow.outbox.top_position()
            sweeps += _event_sweeps(now - self.keep, top)
        created = IdempotencyRecord.created_at
        sweeps.append(
            _Sweep("idempotency_records", IdempotencyRecord, created, now - self.idempotency)
        )
        return sweeps

    async def sweep_once(self) -> dict[str, int]:
        """Delete what is older than its retention in every swept table; counts by table."""
        counts: dict[str, int] = {}
        for sweep in await self._sweeps():
            total = 0
            while True:
                async with UnitOfWork(self.database) as uow:
                    await uow.begin_write()
                    deleted = await purge_slice(
                        uow.session,
                        sweep.model,
                        sweep.age,
                        sweep.cutoff,
                        step=self.step,
                        where=sweep.where,
                    )
                    await uow.commit()
                if not deleted:
                    break
                total += deleted
            PURGED.labels(sweep.table).inc(total)
            counts[sweep.table] = total
        log.info("housekeeping swept", **counts)
        return counts

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.lease.try_acquire():
                    try:
                        await self.sweep_once()
                        await self.database.refresh_statistics()
                        await self.sweep_blobs_when_due()
                    finally:
                        await self.lease.release()
            except Exception:  # a database hiccup must not end the worker
                log.exception("housekeeping failed")
            await pause(stop, self.every.total_seconds())
