"""Scheduled jobs: claimed with leases by any number of workers, each run once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

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


async def test_a_slow_job_keeps_its_lease_so_no_second_worker_runs_it(
    backend_url: str, container: Container, tenants: Tenants
) -> None:
    """The job runs two and a half leases long; the heartbeat renews its lease meanwhile (a
    lease of 2 s renewed every 0.67 s, so a loaded machine's stall of a second claims nothing)."""
    tenant = await tenants.create()
    runs: list[str] = []
    started = asyncio.Event()

    async def slow(job: ScheduledJob) -> None:
        runs.append(job.key)
        started.set()
        await asyncio.sleep(5.0)

    lease = timedelta(seconds=2)
    await _drain(Scheduler(container.database, {"slow": slow}))
    await _schedule(container, tenant.id, "slow-1", kind="slow")
    other = build(settings_for(backend_url))
    try:
        one = Scheduler(container.database, {"slow": slow}, owner="one", lease=lease)
        two = Scheduler(other.database, {"slow": slow}, owner="two", lease=lease)
        first = asyncio.create_task(one.run_once())
        await started.wait()
        while not first.done():
            # Other modules' jobs may come due meanwhile; a claim of this one by two would
            # count a second attempt.
            await two.run_once()
            await asyncio.sleep(0.5)  # a worker's pace, not a tight loop
        await first
        assert (await _job(container, tenant.id, "slow-1")).lease_until is None
    finally:
        await other.close()
    assert runs == ["slow-1"]
    job = await _job(container, tenant.id, "slow-1")
    assert (job.status, job.attempts) == ("done", 1)


async def test_jobs_waiting_their_turn_in_a_batch_are_not_run_twice(
    backend_url: str, container: Container, tenants: Tenants
) -> None:
    """A batch takes longer than a lease: the jobs still waiting keep their leases, and what
    has not started within one lease goes back for any worker to claim."""
    tenant = await tenants.create()
    runs: list[str] = []
    started = asyncio.Event()

    async def slowish(job: ScheduledJob) -> None:
        runs.append(job.key)
        started.set()
        await asyncio.sleep(0.6)

    lease = timedelta(seconds=1)
    await _drain(Scheduler(container.database, {"slowish": slowish}))
    for n in range(5):
        await _schedule(container, tenant.id, f"turn-{n}", kind="slowish")
    other = build(settings_for(backend_url))
    try:
        one = Scheduler(container.database, {"slowish": slowish}, owner="one", lease=lease)
        two = Scheduler(other.database, {"slowish": slowish}, owner="two", lease=lease)
        first = asyncio.create_task(one.run_once())
        await started.wait()

        async def poll() -> None:
            while not first.done():
                await two.run_once()
                await asyncio.sleep(0.1)

        await asyncio.gather(first, poll())
        await asyncio.gather(_drain(one), _drain(two))
    finally:
        await other.close()
    assert sorted(runs) == [f"turn-{n}" for n in range(5)]
    for n in range(5):
        job = await _job(container, tenant.id, f"turn-{n}")
        assert (job.status, job.attempts) == ("done", 1)


async def test_a_worker_asked_to_stop_hands_back_the_jobs_it_did_not_start(
    container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    stop = asyncio.Event()
    runs: list[str] = []

    async def stops_the_worker(job: ScheduledJob) -> None:
        runs.append(job.key)
        stop.set()

    scheduler = Scheduler(container.database, {"stopping": stops_the_worker}, owner="leaving")
    await _drain(scheduler)
    for n in range(3):
        await _schedule(container, tenant.id, f"stop-{n}", kind="stopping", due_in=-10 + n)
    await scheduler.run(stop)
    assert runs == ["stop-0"]
    left = [await _job(container, tenant.id, f"stop-{n}") for n in (1, 2)]
    assert [(j.status, j.attempts, j.lease_owner) for j in left] == [("pending", 0, None)] * 2
    stop.clear()
    await _drain(scheduler)
    assert runs == ["stop-0", "stop-1", "stop-2"]


async def test_a_failed_key_scheduled_again_starts_its_attempts_from_zero(
    container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()

    async def broken(job: ScheduledJob) -> None:
        raise RuntimeError("remote down")

    scheduler = Scheduler(container.database, {"flaky": broken}, max_attempts=1)
    await _drain(scheduler)
    await _schedule(container, tenant.id, "again", kind="flaky")
    await _drain(scheduler)
    assert (await _job(container, tenant.id, "again")).status == "failed"
    for status in ("failed", "done", "cancelled"):
        async with container.unit_of_work(tenant.id) as uow:
            await uow.begin_write()
            job = await uow.jobs.find("again")
            assert job is not None
            job.status = status
            await uow.commit()
        await _schedule(container, tenant.id, "again", kind="flaky", due_in=3600)
        job = await _job(container, tenant.id, "again")
        assert (job.status, job.attempts, job.last_error) == ("pending", 0, None)
    await _schedule(container, tenant.id, "again", kind="flaky")
    retrying = Scheduler(container.database, {"flaky": broken}, max_attempts=2)
    await _drain(retrying)
    job = await _job(container, tenant.id, "again")
    assert (job.status, job.attempts) == ("pending", 1)  # retried, not failed at once
    async with container.unit_of_work(tenant.id) as uow:  # no other test's worker may run it
        await uow.begin_write()
        await uow.jobs.cancel("again")
        await uow.commit()


async def test_a_job_that_plans_its_own_next_run_stays_pending_without_a_lost_lease_warning(
    container: Container,
    tenants: Tenants,
    app: object,  # configures logging, so the scheduler's warnings reach caplog
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = await tenants.create()
    later = utcnow() + timedelta(hours=1)

    async def recurring(job: ScheduledJob) -> None:
        async with container.unit_of_work(job.tenant_id) as uow:
            await uow.begin_write()
            await uow.jobs.schedule(
                kind=job.kind,
                key=job.key,
                due_at=later,
                payload={"n": 2},
                traceparent=job.traceparent,
            )
            await uow.commit()

    scheduler = Scheduler(container.database, {"recurring": recurring})
    await _drain(scheduler)
    await _schedule(container, tenant.id, "every-minute", kind="recurring", payload={"n": 1})
    with caplog.at_level(logging.WARNING, logger="casedesk.worker.scheduler"):
        await _drain(scheduler)

    job = await _job(container, tenant.id, "every-minute")
    assert (job.status, job.payload, job.attempts, job.due_at) == ("pending", {"n": 2}, 0, later)
    # Jobs other tests left in the shared database may come due meanwhile: only this job's
    # records (and those about no job in particular) count.
    about_this_job = [
        r
        for r in caplog.records
        if r.name == "casedesk.worker.scheduler"
        and (not isinstance(r.msg, dict) or r.msg.get("job_id", str(job.id)) == str(job.id))
    ]
    assert about_this_job == []


async def test_a_worker_runs_jobs_side_by_side_up_to_its_concurrency(
    container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    running: set[str] = set()
    most = 0
    done: list[str] = []

    async def waits(job: ScheduledJob) -> None:
        nonlocal most
        running.add(job.key)
        most = max(most, len(running))
        await asyncio.sleep(0.3)
        running.discard(job.key)
        done.append(job.key)

    scheduler = Scheduler(container.database, {"side": waits}, concurrency=3, idle_seconds=0.05)
    await _drain(scheduler)
    for n in range(7):
        await _schedule(container, tenant.id, f"side-{n}", kind="side")
    stop = asyncio.Event()
    worker = asyncio.create_task(scheduler.run(stop))
    for _ in range(100):
        if len(done) == 7:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await worker
    assert sorted(done) == [f"side-{n}" for n in range(7)]
    assert most == 3
    for n in range(7):
        job = await _job(container, tenant.id, f"side-{n}")
        assert (job.status, job.attempts) == ("done", 1)


async def test_a_slow_job_does_not_hold_up_the_jobs_behind_it(
    container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    release = asyncio.Event()
    done: list[str] = []

    async def slow_or_quick(job: ScheduledJob) -> None:
        if job.key == "a-slow-one":
            await release.wait()
        done.append(job.key)

    scheduler = Scheduler(
        container.database, {"mixed": slow_or_quick}, concurrency=2, idle_seconds=0.05
    )
    await _drain(scheduler)
    await _schedule(container, tenant.id, "a-slow-one", kind="mixed", due_in=-10)
    for n in range(5):
        await _schedule(container, tenant.id, f"quick-{n}", kind="mixed", due_in=-5 + n)
    stop = asyncio.Event()
    worker = asyncio.create_task(scheduler.run(stop))
    for _ in range(100):
        if len(done) == 5:
            break
        await asyncio.sleep(0.05)
    assert done == [f"quick-{n}" for n in range(5)]  # all while the slow one still ran
    assert (await _job(container, tenant.id, "a-slow-one")).status == "running"
    release.set()
    for _ in range(100):
        if len(done) == 6:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await worker
    assert done[-1] == "a-slow-one"
    assert (await _job(container, tenant.id, "a-slow-one")).status == "done"


async def test_a_stopped_worker_finishes_its_running_jobs_and_hands_back_the_rest(
    container: Container, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    stop = asyncio.Event()
    started: list[str] = []
    finished: list[str] = []

    async def stops_the_worker(job: ScheduledJob) -> None:
        started.append(job.key)
        if len(started) == 2:
            stop.set()
        await asyncio.sleep(0.3)
        finished.append(job.key)

    scheduler = Scheduler(
        container.database, {"leaving": stops_the_worker}, owner="leaving", concurrency=2
    )
    await _drain(scheduler)
    for n in range(6):
        await _schedule(container, tenant.id, f"leave-{n}", kind="leaving", due_in=-10 + n)
    await scheduler.run(stop)
    assert started == finished == ["leave-0", "leave-1"]
    left = [await _job(container, tenant.id, f"leave-{n}") for n in range(2, 6)]
    assert [(j.status, j.attempts, j.lease_owner) for j in left] == [("pending", 0, None)] * 4
    await _drain(scheduler)
    assert sorted(finished) == [f"leave-{n}" for n in range(6)]


async def test_renewing_leases_never_waits_for_a_job_row_another_transaction_holds(
    backend: str, backend_url: str, container: Container, tenants: Tenants
) -> None:
    """A handler's transaction that holds one of the worker's job rows (and a renewal that
    would wait for it) was a deadlock when that transaction then wanted another of them: the
    renewal skips the held row, counts it as still the worker's, and a job taken over is lost."""
    tenant = await tenants.create()
    await _drain(Scheduler(container.database, {"test": lambda job: asyncio.sleep(0)}))
    for key in ("renew-a", "renew-b", "renew-c"):
        await _schedule(container, tenant.id, key)
    async with container.unit_of_work() as uow:
        await uow.begin_write()
        claimed = await uow.jobs.claim("mine", limit=100, lease=timedelta(seconds=30))
        await uow.commit()
    jobs = {job.key: job.id for job in claimed if job.key.startswith("renew-")}
    assert set(jobs) == {"renew-a", "renew-b", "renew-c"}
    async with container.unit_of_work(tenant.id) as uow:  # another worker took c over
        await uow.begin_write()
        found = await uow.session.get(ScheduledJob, jobs["renew-c"])
        assert found is not None
        found.lease_owner = "other"
        await uow.commit()

    async def renew() -> set[uuid.UUID]:
        async with container.unit_of_work() as uow:
            await uow.begin_write()
            renewing = uow.jobs.renew(list(jobs.values()), "mine", lease=timedelta(minutes=5))
            held = await asyncio.wait_for(renewing, timeout=10)
            await uow.commit()
        return held

    if backend == "sqlite":  # writers take turns there: no row is held while another writes
        held = await renew()
    else:
        holder = build(settings_for(backend_url))
        try:
            async with holder.unit_of_work(tenant.id) as locking:
                await locking.begin_write()
                await locking.session.scalar(
                    select(ScheduledJob).where(ScheduledJob.id == jobs["renew-b"]).with_for_update()
                )
                held = await renew()
                await locking.rollback()
        finally:
            await holder.close()
    assert held == {jobs["renew-a"], jobs["renew-b"]}
    longer = (await _job(container, tenant.id, "renew-a")).lease_until
    assert longer is not None
    assert longer > utcnow() + timedelta(minutes=4)


async def test_a_job_row_locked_only_for_a_moment_is_renewed_not_given_up(
    backend: str, backend_url: str, container: Container, tenants: Tenants
) -> None:
    """On MariaDB another worker's claim locks the rows its scan passes, a running job's
    among them, for a moment: a renewal that skipped the row and found it free a moment later
    took it for lost, stopped renewing it, and its lease ran out under the running job, which
    a second worker then ran again. Here the lock goes between the renewal's two looks."""
    if backend == "sqlite":
        pytest.skip("SQLite writers take turns: no row is locked while another writes")
    tenant = await tenants.create()
    await _drain(Scheduler(container.database, {"test": lambda job: asyncio.sleep(0)}))
    await _schedule(container, tenant.id, "blink")
    async with container.unit_of_work() as uow:
        await uow.begin_write()
        claimed = await uow.jobs.claim("mine", limit=100, lease=timedelta(seconds=30))
        await uow.commit()
    job_id = next(job.id for job in claimed if job.key == "blink")
    holder = build(settings_for(backend_url))
    try:
        async with holder.unit_of_work(tenant.id) as locking:
            await locking.begin_write()
            await locking.session.scalar(
                select(ScheduledJob).where(ScheduledJob.id == job_id).with_for_update()
            )
            async with container.unit_of_work() as uow:
                await uow.begin_write()
                session = uow.jobs.session
                looks = 0
                original = session.scalars

                async def first_look_then_unlock(*args: Any, **kwargs: Any) -> Any:
                    nonlocal looks
                    found = await original(*args, **kwargs)
                    looks += 1
                    if looks == 1:
                        await locking.rollback()  # the claim's scan has moved on
                    return found

                session.scalars = first_look_then_unlock  # type: ignore[method-assign]
                held = await uow.jobs.renew([job_id], "mine", lease=timedelta(minutes=5))
                await uow.commit()
    finally:
        await holder.close()
    assert held == {job_id}
    longer = (await _job(container, tenant.id, "blink")).lease_until
    assert longer is not None
    assert longer > utcnow() + timedelta(minutes=4)
