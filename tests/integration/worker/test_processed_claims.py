"""A consumer's claim on an event: one statement, and two claimants never both win."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from casedesk.bootstrap import Container
from casedesk.kit.ids import uuid7
from casedesk.store.unit_of_work import UnitOfWork
from tests.conftest import Tenants


async def test_a_claim_wins_once_and_is_kept_only_when_committed(
    container: Container, tenants: Tenants
) -> None:
    tenant = (await tenants.create()).id
    event = uuid7()
    async with UnitOfWork(container.database, tenant) as uow:
        await uow.begin_write()
        assert await uow.processed.claim("g", event) is True
        assert await uow.processed.claim("g", event) is False  # seen in its own transaction
        assert await uow.processed.claim("other", event) is True  # per group
        await uow.rollback()
    async with UnitOfWork(container.database, tenant) as uow:
        await uow.begin_write()
        assert await uow.processed.claim("g", event) is True  # the rollback kept nothing
        await uow.commit()
    async with UnitOfWork(container.database, tenant) as uow:
        await uow.begin_write()
        assert await uow.processed.claim("g", event) is False
        await uow.commit()


@pytest.mark.parametrize("first_commits", [True, False])
async def test_a_second_claimant_waits_for_the_first_and_wins_only_if_it_rolled_back(
    container: Container, tenants: Tenants, first_commits: bool
) -> None:
    """On SQLite the second claimant already waits at BEGIN IMMEDIATE; the outcome is the same."""
    tenant = (await tenants.create()).id
    event = uuid.uuid4()
    async with UnitOfWork(container.database, tenant) as first:
        await first.begin_write()
        assert await first.processed.claim("g", event) is True

        async def second_claim() -> bool:
            async with UnitOfWork(container.database, tenant) as second:
                await second.begin_write()
                won = await second.processed.claim("g", event)
                await second.commit()
                return won

        second = asyncio.create_task(second_claim())
        await asyncio.sleep(0.3)
        assert not second.done()  # it waits for the first transaction
        if first_commits:
            await first.commit()
        else:
            await first.rollback()
    assert await asyncio.wait_for(second, 10) is (not first_commits)
