"""Reads of the trace store: the hot tier first, SQL behind it, one answer either way.

A record lives in the hot tier from its flush until its TTL, and in SQL from the
persister's write until the retention purges it; around both edges a record may be in one
tier only, and while Redis is down it is only in SQL. So a page is read from both tiers with
the same query and merged by id, newest first: what a reader sees does not depend on which
tier happened to hold a record. A single record is looked up in the hot tier, then in SQL.
"""

from __future__ import annotations

import uuid

from prometheus_client import Counter

from casedesk.kit.logging import get_logger
from casedesk.store.database import Database
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.traces import sql
from casedesk.traces.documents import Document
from casedesk.traces.hot import HotStore, HotStoreUnavailable
from casedesk.traces.query import TraceQuery, newest_first

HOT_MISSES = Counter(
    "casedesk_trace_reads_without_hot_tier_total", "Trace reads served by SQL alone: hot tier down"
)
log = get_logger(__name__)


class TraceReader:
    def __init__(self, database: Database, hot: HotStore) -> None:
        self.database = database
        self.hot = hot

    async def get(self, tenant_id: uuid.UUID, record_id: uuid.UUID) -> Document | None:
        try:
            found = await self.hot.get(tenant_id, record_id)
        except HotStoreUnavailable as exc:
            HOT_MISSES.inc()
            log.warning("trace hot tier unavailable; reading SQL", error=str(exc))
            found = None
        if found is not None:
            return found
        async with UnitOfWork(self.database, tenant_id) as uow:
            return await sql.get(uow.session, record_id)

    async def query(self, query: TraceQuery) -> list[Document]:
        try:
            hot = await self.hot.query(query)
        except HotStoreUnavailable as exc:
            HOT_MISSES.inc()
            log.warning("trace hot tier unavailable; reading SQL", error=str(exc))
            hot = []
        async with UnitOfWork(self.database, query.tenant_id) as uow:
            durable = await sql.query(uow.session, query)
        merged = {doc["id"]: doc for doc in durable} | {doc["id"]: doc for doc in hot}
        return newest_first(list(merged.values()))[: query.limit]
