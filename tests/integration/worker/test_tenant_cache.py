"""A value per tenant, reused for its ttl: one load at a time, whatever the deliveries."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from casedesk.bootstrap import Container
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.tenant_cache import TenantCache
from tests.conftest import Tenants


class CountingLoad:
    """Reads the tenant's rules, slowly, and counts the reads."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self, uow: UnitOfWork) -> int:
        self.calls += 1
        await self.release.wait()
        return len(await uow.rules.in_order()) + self.calls * 100


async def test_deliveries_asking_at_once_share_one_load(
    container: Container, tenants: Tenants
) -> None:
    tenant = (await tenants.create()).id
    load = CountingLoad()
    cache = TenantCache(container.database, load, ttl=60)

    asking = [asyncio.create_task(cache.get(tenant)) for _ in range(20)]
    await asyncio.sleep(0.05)
    load.release.set()
    values = await asyncio.gather(*asking)

    assert load.calls == 1
    assert values == [100] * 20
    assert await cache.get(tenant) == 100  # and reused while fresh
    assert load.calls == 1


async def test_a_value_older_than_the_ttl_is_loaded_again(
    container: Container, tenants: Tenants
) -> None:
    tenant = (await tenants.create()).id
    load = CountingLoad()
    load.release.set()
    cache = TenantCache(container.database, load, ttl=0.2)

    assert await cache.get(tenant) == 100
    await asyncio.sleep(0.25)

    assert await cache.get(tenant) == 200
    assert load.calls == 2


async def test_a_cancelled_delivery_does_not_cancel_the_load_others_wait_for(
    container: Container, tenants: Tenants
) -> None:
    tenant = (await tenants.create()).id
    load = CountingLoad()
    cache = TenantCache(container.database, load, ttl=60)
    first = asyncio.create_task(cache.get(tenant))
    second = asyncio.create_task(cache.get(tenant))
    await asyncio.sleep(0.05)

    first.cancel()
    load.release.set()

    assert await second == 100
    with pytest.raises(asyncio.CancelledError):
        await first
    assert load.calls == 1


async def test_a_failed_load_fails_its_waiters_and_the_next_ask_tries_again(
    container: Container, tenants: Tenants
) -> None:
    tenant = (await tenants.create()).id
    failures = iter([True, False])

    async def flaky(uow: UnitOfWork) -> uuid.UUID | None:
        if next(failures):
            raise RuntimeError("the database went away")
        return uow.tenant_id

    cache = TenantCache(container.database, flaky, ttl=60)

    with pytest.raises(RuntimeError, match="went away"):
        await cache.get(tenant)
    assert await cache.get(tenant) == tenant
