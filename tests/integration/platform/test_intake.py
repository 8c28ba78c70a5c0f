"""Triggers hand items over once: each new source id one queued execution with its job."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from casedesk.bootstrap import Container
from casedesk.kit.tracing import new_trace
from casedesk.platform.intake import RUN, TriggerItem, fire, remember
from casedesk.store.models import Execution, ScheduledJob, Subscription, Workflow
from tests.conftest import Tenants


async def _subscription(container: Container, tenant_id: uuid.UUID) -> Subscription:
    async with container.unit_of_work(tenant_id) as uow:
        await uow.begin_write()
        workflow = uow.workflows.add(
            Workflow(code=f"w{uuid.uuid4().hex[:8]}", name="w", draft={}, latest_version=3)
        )
        await uow.flush()
        subscription = uow.subscriptions.add(
            Subscription(workflow_id=workflow.id, trigger="delivery", settings={})
        )
        await uow.commit()
    return subscription


def _items(*ids: str) -> list[TriggerItem]:
    return [TriggerItem(source_id, {"id": source_id}) for source_id in ids]


async def _fire(container: Container, subscription: Subscription, *ids: str) -> list[Execution]:
    async with container.unit_of_work(subscription.tenant_id) as uow:
        await uow.begin_write()
        made = await fire(uow, subscription, _items(*ids), new_trace())
        await uow.commit()
    return made


async def test_each_new_source_id_becomes_one_queued_execution_with_its_job(
    container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    subscription = await _subscription(container, tenant.id)
    first = await _fire(container, subscription, "a", "b", "a")
    assert [e.source_id for e in first] == ["a", "b"]
    assert {e.workflow_version for e in first} == {3}
    assert {e.status for e in first} == {"queued"}
    again = await _fire(container, subscription, "b", "c")
    assert [e.source_id for e in again] == ["c"]
    async with container.unit_of_work(tenant.id) as uow:
        jobs = await uow.session.scalar(
            select(func.count()).select_from(ScheduledJob).where(ScheduledJob.kind == RUN)
        )
        count = await uow.session.scalar(select(func.count()).select_from(Execution))
    assert (jobs, count) == (3, 3)


async def test_a_baseline_remembers_ids_without_firing(
    container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    subscription = await _subscription(container, tenant.id)
    async with container.unit_of_work(tenant.id) as uow:
        await uow.begin_write()
        assert await remember(uow, subscription, ["old-1", "old-2"]) == 2
        await uow.commit()
    assert [e.source_id for e in await _fire(container, subscription, "old-1", "new")] == ["new"]


async def test_a_rolled_back_run_leaves_its_ids_unseen(
    container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    subscription = await _subscription(container, tenant.id)
    async with container.unit_of_work(tenant.id) as uow:
        await uow.begin_write()
        assert len(await fire(uow, subscription, _items("x"), new_trace())) == 1
        await uow.rollback()  # the run crashed before its commit
    assert [e.source_id for e in await _fire(container, subscription, "x")] == ["x"]


async def test_two_runs_racing_on_one_item_fire_it_once(
    container: Container, tenants: Tenants, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite writers take the write lock at BEGIN: the second run waits")
    tenant = await tenants.create()
    subscription = await _subscription(container, tenant.id)
    async with container.unit_of_work(tenant.id) as first:
        await first.begin_write()
        assert len(await fire(first, subscription, _items("same"), new_trace())) == 1
        second = asyncio.create_task(_fire(container, subscription, "same"))
        await asyncio.sleep(0.5)
        assert not second.done()  # it waits for the first run's claim
        await first.commit()
    assert await asyncio.wait_for(second, 30) == []
