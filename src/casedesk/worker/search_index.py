"""The search indexer: the ``search`` consumer group, and the rebuild of every document.

The group handles the events after which a case's text may differ (``indexing.TYPES``) in
the group's own transaction with its processed-event record, so an event delivered again is
skipped and a failed one retried; a case write never waits for it. ``reindex`` rebuilds the
documents of one tenant or all, in batches of case ids, while the indexer goes on: both make a
document from the rows as they are, and a rebuild never writes over a document the indexer
kept after the rebuild read it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime

import orjson
from prometheus_client import Gauge
from sqlalchemy import func, select

from casedesk.domain.search import indexing
from casedesk.kit.clock import utcnow
from casedesk.store.bus.base import Message
from casedesk.store.database import Database
from casedesk.store.jobs import PLANNED_AGAIN
from casedesk.store.models import Case, ScheduledJob
from casedesk.store.search import refresh_statistics
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.consumers import ConsumerGroup

BATCH = 200
JOB_BATCHES = 10
"""Batches a ``search.reindex`` job rebuilds before it plans its next run."""
REINDEX = "search.reindex"
INDEX_DELAY = Gauge(
    "casedesk_search_index_delay_seconds",
    "How old the last event the search indexer handled was when it handled it",
)
Progress = Callable[[int, int], None]
"""Called with (cases done, cases in all) as a rebuild goes."""


class SearchIndexer:
    def __init__(self, database: Database) -> None:
        self.database = database

    def group(self) -> ConsumerGroup:
        return ConsumerGroup(indexing.GROUP, list(indexing.TYPES), self.handle, prefetch=32)

    async def handle(self, message: Message, uow: UnitOfWork | None) -> None:
        assert uow is not None
        if message.subject is None or message.subject_type != "case":
            return
        await indexing.index_case(uow, uuid.UUID(message.subject), message.sequence)
        occurred = _time_of(message)
        if occurred is not None:
            INDEX_DELAY.set(max(0.0, time.time() - occurred.timestamp()))


def _time_of(message: Message) -> datetime | None:
    """When the event happened, as its envelope says (None when it cannot be read)."""
    try:
        stamp = orjson.loads(message.body).get("time")
        return datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except (orjson.JSONDecodeError, ValueError, AttributeError):
        return None


async def reindex(
    database: Database, *, tenant_id: uuid.UUID | None = None, progress: Progress | None = None
) -> int:
    """Rebuild the documents of the tenant's cases (every tenant's when None), in batches of
    ``BATCH`` cases, each batch its own transaction; how many documents were written."""
    async with UnitOfWork(database) as uow:
        tenants = [t.id for t in await uow.tenants.all() if tenant_id in (None, t.id)]
        counted = select(func.count()).select_from(Case).where(Case.tenant_id.in_(tenants))
        total = int(await uow.session.scalar(counted) or 0) if tenants else 0
    done = written = 0
    for tenant in tenants:
        after: uuid.UUID | None = None
        while True:
            batch = await _rebuild_batch(database, tenant, after)
            if batch is None:
                break
            after, count, kept = batch
            done, written = done + count, written + kept
            if progress is not None:
                progress(done, total)
    await _refreshed(database)
    return written


async def _refreshed(database: Database) -> None:
    async with UnitOfWork(database) as uow:
        await uow.begin_write()
        await refresh_statistics(uow.session)
        await uow.commit()


async def _rebuild_batch(
    database: Database, tenant_id: uuid.UUID, after: uuid.UUID | None
) -> tuple[uuid.UUID, int, int] | None:
    """Rebuild the next ``BATCH`` cases of the tenant after ``after`` in one transaction: the
    last case's id, how many cases and how many documents were written; None when none is
    left."""
    async with UnitOfWork(database, tenant_id) as uow:
        await uow.begin_write()
        ids = select(Case.id).where(Case.tenant_id == tenant_id).order_by(Case.id)
        if after is not None:
            ids = ids.where(Case.id > after)
        batch = list((await uow.session.scalars(ids.limit(BATCH))).all())
        if not batch:
            return None
        written = await indexing.rebuild(uow, batch)
        await uow.commit()
    return batch[-1], len(batch), written


def reindex_key(tenant_id: uuid.UUID) -> str:
    return f"{REINDEX}:{tenant_id}"


class Reindexing:
    """``search.reindex``: a tenant's documents rebuilt by the workers, a slice of cases per
    run, each run planning the next from where it stopped (an upgrade to search plans one per
    tenant that has cases, so the cases made before are found without anyone running
    ``casedesk search reindex``)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def run_job(self, job: ScheduledJob) -> str | None:
        after_text = job.payload.get("after")
        after = uuid.UUID(str(after_text)) if after_text else None
        for _ in range(JOB_BATCHES):
            batch = await _rebuild_batch(self.database, job.tenant_id, after)
            if batch is None:
                await _refreshed(self.database)
                return None
            after = batch[0]
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            await uow.jobs.schedule_again(
                kind=REINDEX,
                key=job.key,
                due_at=utcnow(),
                payload={"after": str(after)},
                traceparent=job.traceparent,
            )
            await uow.commit()
        return PLANNED_AGAIN
