"""Runs due scheduled jobs: claimed with leases, so any number of workers share the table.

A job runs under the trace of the change that scheduled it. A failing job is retried with
backoff and marked failed after ``max_attempts``; a worker that dies with a job in hand
loses its lease, and another worker runs the job again when the lease runs out — so job
handlers must be idempotent by job id.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from prometheus_client import Counter

from casedesk.kit.aio import pause
from casedesk.kit.clock import utcnow
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import current_trace, new_trace, parse_traceparent
from casedesk.store.database import Database
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

    async def run_once(self) -> int:
        async with UnitOfWork(self.database) as uow:
            await uow.begin_write()
            jobs = await uow.jobs.claim(self.owner, limit=self.batch_size, lease=self.lease)
            await uow.commit()
        for job in jobs:
            await self._run(job)
        return len(jobs)

    async def _run(self, job: ScheduledJob) -> None:
        token = current_trace.set(parse_traceparent(job.traceparent) or new_trace())
        error: str | None = None
        try:
            handler = self.handlers.get(job.kind)
            if handler is None:
                raise LookupError(f"no handler for jobs of kind {job.kind!r}")
            await handler(job)
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
            await uow.commit()
        if not kept:
            log.warning("job lease was lost before it finished", job_id=str(job.id))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                ran = await self.run_once()
            except Exception:  # a database hiccup must not end the worker
                log.exception("claiming jobs failed")
                ran = 0
            if ran < self.batch_size:
                await pause(stop, self.idle_seconds)
