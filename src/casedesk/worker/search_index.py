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
from casedesk.store.bus.base import Message
from casedesk.store.database import Database
from casedesk.store.models import Case
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.consumers import ConsumerGroup

BATCH = 200
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
            async with UnitOfWork(database, tenant) as uow:
                await uow.begin_write()
                ids = select(Case.id).where(Case.tenant_id == tenant).order_by(Case.id)
                if after is not None:
                    ids = ids.where(Case.id > after)
                batch = list((await uow.session.scalars(ids.limit(BATCH))).all())
                if not batch:
                    break
                written += await indexing.rebuild(uow, batch)
                await uow.commit()
            after = batch[-1]
            done += len(batch)
            if progress is not None:
                progress(done, total)
    return written
