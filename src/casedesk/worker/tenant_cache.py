"""A value per tenant, loaded from the database and reused for a short while.

Consumer groups use it to decide, before opening a transaction, whether a tenant has anything
for them at all (time rules, webhooks, SLA policies): most events of most tenants need no
work from most groups. A change made by an admin applies within ``ttl`` seconds.
"""

from __future__ import annotations

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

    async def get(self, tenant_id: uuid.UUID) -> T:
        cached = self._values.get(tenant_id)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        async with UnitOfWork(self.database, tenant_id) as uow:
            value = await self.load(uow)
        self._values[tenant_id] = (time.monotonic(), value)
        return value
