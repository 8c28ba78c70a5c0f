"""Scheduled jobs: claimed with leases by any number of workers, each run once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from casedesk.bootstrap import Container, build
from casedesk.kit.clock import utcnow
from casedesk.kit.tracing import current_trace, new_trace
from casedesk.store.models import ScheduledJob
from casedesk.worker.scheduler import Scheduler
from tests.conftest import Tenants, settings_for


async def _schedule(
    container: Container,
    tenant_id: uuid.UUID,
    key: str,
    *,
    due_in: float = -1,
    kind: str = "test",
    payload: dict[str, object] | None = None,
    traceparent: str | None = None,
) -> None:
    async with container.unit_of_work(tenant_id) as uow:
        await uow.begin_write()
        await uow.jobs.schedule(
            kind=kind,
            key=key,
            due_at=utcnow() + timedelta(seconds=due_in),
            payload=payload or {},
            traceparent=traceparent or new_trace().traceparent,
        )
        await uow.commit()


async def _job(container: Container, tenant_id: uuid.UUID, key: str) -> ScheduledJob:
    async with container.unit_of_work(tenant_id) as uow:
        from sqlalchemy import select

        job = await uow.session.scalar(select(ScheduledJob).where(ScheduledJob.key == key))
    assert job is not None
    return job


async def _drain(scheduler: Scheduler) -> None:
    while await scheduler.run_once():
        pass


async def test_a_due_job_runs_once_under_the_trace_that_scheduled_it(
    container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    trace = new_trace()
    seen: list[tuple[dict[str, object], str | None]] = []

    async def handler(job: ScheduledJob) -> None:
        context = current_trace.get()
        seen.append((job.payload, context.trace_id if context else None))

    scheduler = Scheduler(container.database, {"test": handler})
    await _drain(scheduler)
    await _schedule(container, tenant.id, "k1", payload={"n": 1}, traceparent=trace.traceparent)
    await _schedule(container, tenant.id, "later", due_in=3600)
    await _drain(scheduler)
    assert seen == [({"n": 1}, trace.trace_id)]
    assert (await _job(container, tenant.id, "k1")).status == "done"
    assert (await _job(container, tenant.id, "later")).status == "pending"
    await _drain(scheduler)
    assert len(seen) == 1


async def test_scheduling_a_key_again_moves_the_job(container: Container, tenants: Tenants) -> None:
    tenant = await tenants.create()
    await _schedule(container, tenant.id, "sla", due_in=3600)
    await _schedule(container, tenant.id, "sla", due_in=7200, payload={"moved": True})
    job = await _job(container, tenant.id, "sla")
    assert job.payload == {"moved": True}
    assert job.due_at > utcnow() + timedelta(seconds=7000)


async def test_a_failing_job_is_retried_with_backoff_then_failed(
    container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    calls: list[int] = []

    async def broken(job: ScheduledJob) -> None:
        calls.append(job.attempts)
        raise RuntimeError("remote down")

    scheduler = Scheduler(container.database, {"broken": broken}, max_attempts=2)
    await _drain(scheduler)
    await _schedule(container, tenant.id, "b", kind="broken")
    await _drain(scheduler)
    job = await _job(container, tenant.id, "b")
    assert (job.status, job.attempts) == ("pending", 1)
    assert "remote down" in (job.last_error or "")
    assert job.due_at > utcnow()
    async with container.unit_of_work(tenant.id) as uow:
        await uow.begin_write()
        stored = await uow.session.get(ScheduledJob, job.id)
        assert stored is not None
        stored.due_at = utcnow() - timedelta(seconds=1)
        await uow.commit()
    await _drain(scheduler)
    job = await _job(container, tenant.id, "b")
    assert (job.status, job.attempts, calls) == ("failed", 2, [1, 2])


async def test_two_workers_share_the_jobs_and_run_each_once(
    backend_url: str, container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    runs: list[str] = []

    async def handler(job: ScheduledJob) -> None:
        await asyncio.sleep(0.005)
        runs.append(job.key)

    await _drain(Scheduler(container.database, {"test": handler}))
    runs.clear()
    for n in range(40):
        await _schedule(container, tenant.id, f"job-{n}")
    other = build(settings_for(backend_url))
    try:
        one = Scheduler(container.database, {"test": handler}, owner="one", batch_size=5)
        two = Scheduler(other.database, {"test": handler}, owner="two", batch_size=5)
        await asyncio.gather(_drain(one), _drain(two))
    finally:
        await other.close()
    assert sorted(runs) == sorted(f"job-{n}" for n in range(40))


async def test_a_lost_lease_lets_another_worker_run_the_job(
    container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    runs: list[str] = []

    async def handler(job: ScheduledJob) -> None:
        runs.append(job.key)

    await _drain(Scheduler(container.database, {"test": handler}))
    runs.clear()
    await _schedule(container, tenant.id, "crashy")
    async with container.unit_of_work() as uow:  # a worker claims it and dies
        await uow.begin_write()
        claimed = await uow.jobs.claim("dead", limit=100, lease=timedelta(seconds=-1))
        await uow.commit()
    assert "crashy" in {job.key for job in claimed}
    await _drain(Scheduler(container.database, {"test": handler}, owner="alive"))
    assert runs.count("crashy") == 1
    async with container.unit_of_work() as uow:
        await uow.begin_write()
        job = next(job for job in claimed if job.key == "crashy")
        assert not await uow.jobs.finish(job.id, "dead", error=None, retry_at=None)
        await uow.commit()
