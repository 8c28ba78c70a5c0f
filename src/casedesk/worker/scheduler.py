"""Runs due scheduled jobs: claimed with leases, so any number of workers share the table.

A job runs under the trace of the change that scheduled it. A failing job is retried with
backoff and marked failed after ``max_attempts``.

A worker claims a batch and works through it one job after another. While it does, a
heartbeat renews the leases of the jobs still in its hand every third of a lease, so a job
that waits its turn, or one that runs long (a webhook to a slow receiver), is never taken
over by a second worker while the first is alive. A batch is worked for at most one lease:
what has not started by then, or when the worker is asked to stop, is handed back for any
worker to claim. A worker that dies (or stalls) with jobs in hand stops renewing, and
another worker runs them when their leases run out — so job handlers must be idempotent,
and one with an effect outside the database checks ``JobRepository.hold`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from prometheus_client import Counter

from casedesk.kit.aio import pause
from casedesk.kit.clock import utcnow
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import current_trace, new_trace, parse_traceparent
from casedesk.store.database import Database
from casedesk.store.jobs import LeaseLost
from casedesk.store.models import ScheduledJob
from casedesk.store.unit_of_work import UnitOfWork

JobHandler = Callable[[ScheduledJob], Awaitable[None]]
JOBS = Counter(
    "casedesk_jobs_total", "Scheduled jobs run, by kind and outcome", ["kind", "outcome"]
)
log = get_logger(__name__)


class Scheduler:
    def __init__(
        self,
        database: Database,
        handlers: Mapping[str, JobHandler],
        *,
        owner: str | None = None,
        batch_size: int = 50,
        lease: timedelta = timedelta(seconds=60),
        idle_seconds: float = 0.5,
        max_attempts: int = 5,
    ) -> None:
        self.database = database
        self.handlers = handlers
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.batch_size = batch_size
        self.lease = lease
        self.idle_seconds = idle_seconds
        self.max_attempts = max_attempts

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Claim a batch and run it; returns how many jobs were claimed."""
        async with UnitOfWork(self.database) as uow:
            await uow.begin_write()
            jobs = await uow.jobs.claim(self.owner, limit=self.batch_size, lease=self.lease)
            await uow.commit()
        if not jobs:
            return 0
        in_hand = {job.id: job for job in jobs}
        heartbeat = asyncio.create_task(self._renew(in_hand), name="casedesk-job-heartbeat")
        deadline = time.monotonic() + self.lease.total_seconds()
        try:
            for job in jobs:
                if (stop is not None and stop.is_set()) or time.monotonic() > deadline:
                    break
                if job.id not in in_hand:
                    log.warning("job lease was taken over while it waited", job_id=str(job.id))
                    continue
                try:
                    await self._run(job)
                finally:
                    in_hand.pop(job.id, None)  # started: never handed back
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if in_hand:
                await self._hand_back(list(in_hand))
        return len(jobs)

    async def _renew(self, in_hand: dict[uuid.UUID, ScheduledJob]) -> None:
        """Every third of a lease, extend the leases of the jobs not yet finished."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                async with UnitOfWork(self.database) as uow:
                    await uow.begin_write()
                    held = await uow.jobs.renew(list(in_hand), self.owner, lease=self.lease)
                    await uow.commit()
            except Exception:  # a database hiccup: try again at the next beat
                log.exception("renewing job leases failed", jobs=len(in_hand))
                continue
            for lost in set(in_hand) - held:
                in_hand.pop(lost, None)  # finished just now, or no longer this worker's

    async def _hand_back(self, job_ids: list[uuid.UUID]) -> None:
        try:
            async with UnitOfWork(self.database) as uow:
                await uow.begin_write()
                await uow.jobs.hand_back(job_ids, self.owner)
                await uow.commit()
        except Exception:  # their leases run out instead, and any worker claims them then
            log.exception("handing back jobs failed", jobs=len(job_ids))

    async def _run(self, job: ScheduledJob) -> None:
        token = current_trace.set(parse_traceparent(job.traceparent) or new_trace())
        error: str | None = None
        try:
            handler = self.handlers.get(job.kind)
            if handler is None:
                raise LookupError(f"no handler for jobs of kind {job.kind!r}")
            await handler(job)
        except LeaseLost:
            # Another worker holds the job now (or it was moved): its outcome is theirs.
            JOBS.labels(job.kind, "lease_lost").inc()
            log.warning("job lease was lost before it ran", job_id=str(job.id), kind=job.kind)
            return
        except Exception as exc:  # the failure policy: record, retry with backoff, then give up
            error = repr(exc)[:10_000]
            log.exception("job failed", job_id=str(job.id), kind=job.kind, attempt=job.attempts)
        finally:
            current_trace.reset(token)
        retry_at = None
        if error is not None and job.attempts < self.max_attempts:
            retry_at = utcnow() + timedelta(seconds=min(3600, 2**job.attempts))
        outcome = "done" if error is None else ("retry" if retry_at else "failed")
        JOBS.labels(job.kind, outcome).inc()
        async with UnitOfWork(self.database) as uow:
            await uow.begin_write()
            kept = await uow.jobs.finish(job.id, self.owner, error=error, retry_at=retry_at)
            # A recurring job (a poll) schedules its own key again: that is no lost lease.
            planned = not kept and await uow.jobs.planned_again(job.id)
            await uow.commit()
        if not (kept or planned):
            log.warning("job lease was lost before it finished", job_id=str(job.id))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                ran = await self.run_once(stop)
            except Exception:  # a database hiccup must not end the worker
                log.exception("claiming jobs failed")
                ran = 0
            if ran < self.batch_size:
                await pause(stop, self.idle_seconds)
