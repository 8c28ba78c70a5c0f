"""A value per tenant, loaded from the database and reused for a short while.

Consumer groups use it to decide, before opening a transaction, whether a tenant has anything
for them at all (time rules, webhooks, SLA policies): most events of most tenants need no
work from most groups. A change made by an admin applies within ``ttl`` seconds.

When a value is due, one load runs and every delivery asking meanwhile waits for it: a
worker handling many deliveries at once would otherwise open one transaction per delivery
each time the value expires.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from casedesk.store.database import Database
from casedesk.store.unit_of_work import UnitOfWork

T = TypeVar("T")


class TenantCache(Generic[T]):
    def __init__(
        self,
        database: Database,
        load: Callable[[UnitOfWork], Awaitable[T]],
        *,
        ttl: float = 1.0,
    ) -> None:
        self.database = database
        self.load = load
        self.ttl = ttl
        self._values: dict[uuid.UUID, tuple[float, T]] = {}
        self._loading: dict[uuid.UUID, asyncio.Future[T]] = {}

    async def get(self, tenant_id: uuid.UUID) -> T:
        cached = self._values.get(tenant_id)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        loading = self._loading.get(tenant_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(tenant_id))
            self._loading[tenant_id] = loading
            loading.add_done_callback(lambda done: self._loaded(tenant_id, done))
        # Shielded: a delivery that is cancelled does not cancel the load the others await.
        return await asyncio.shield(loading)

    async def _load(self, tenant_id: uuid.UUID) -> T:
        began = time.monotonic()
        async with UnitOfWork(self.database, tenant_id) as uow:
            value = await self.load(uow)
        # Counted from before the read, so no value is used longer than ``ttl`` after it.
        self._values[tenant_id] = (began, value)
        return value

    def _loaded(self, tenant_id: uuid.UUID, done: asyncio.Future[T]) -> None:
        if self._loading.get(tenant_id) is done:
            del self._loading[tenant_id]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone
