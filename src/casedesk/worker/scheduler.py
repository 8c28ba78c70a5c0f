"""Runs due scheduled jobs: claimed with leases, so any number of workers share the table.

A job runs under the trace of the change that scheduled it. A failing job is retried with
backoff and marked failed after ``max_attempts``.

A worker runs up to ``concurrency`` jobs at a time, so a poll waiting on its source or a
webhook on a slow receiver does not hold up the jobs behind it. It claims more whenever fewer
than ``concurrency`` claimed jobs wait for a turn, and holds at most ``batch_size``. While it
does, a heartbeat renews the leases of the jobs still in its hand every third of a lease, so a
job that waits its turn, or one that runs long, is never taken over by a second worker while
the first is alive. When the worker is asked to stop, it finishes the jobs it has started and
hands back the others for any worker to claim. A worker that dies (or stalls) with jobs in
hand stops renewing, and another worker runs them when their leases run out — so job handlers
must be idempotent, and one with an effect outside the database checks ``JobRepository.hold``
first. ``run_once`` claims one batch and works through it (for tests and one-off runs): what
has not started within one lease is handed back.
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
from casedesk.store.jobs import PLANNED_AGAIN, LeaseLost
from casedesk.store.models import ScheduledJob
from casedesk.store.unit_of_work import UnitOfWork

JobHandler = Callable[[ScheduledJob], Awaitable[str | None]]
"""Runs a job; returns ``PLANNED_AGAIN`` when it has scheduled its own key again."""
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
        concurrency: int = 1,
    ) -> None:
        self.database = database
        self.handlers = handlers
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.batch_size = batch_size
        self.lease = lease
        self.idle_seconds = idle_seconds
        self.max_attempts = max_attempts
        self.concurrency = max(1, concurrency)

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Claim a batch and run it; returns how many jobs were claimed."""
        jobs = await self._claim(self.batch_size)
        if not jobs:
            return 0
        in_hand = {job.id: job for job in jobs}
        heartbeat = asyncio.create_task(self._renew(in_hand), name="casedesk-job-heartbeat")
        deadline = time.monotonic() + self.lease.total_seconds()
        turns = asyncio.Semaphore(self.concurrency)

        async def turn(job: ScheduledJob) -> None:
            async with turns:
                if (stop is not None and stop.is_set()) or time.monotonic() > deadline:
                    return  # handed back below
                await self._start(job, in_hand)

        try:
            await asyncio.gather(*(turn(job) for job in jobs))
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if in_hand:
                await self._hand_back(list(in_hand))
        return len(jobs)

    async def _claim(self, limit: int) -> list[ScheduledJob]:
        async with UnitOfWork(self.database) as uow:
            await uow.begin_write()
            jobs = await uow.jobs.claim(self.owner, limit=limit, lease=self.lease)
            await uow.commit()
        return jobs

    async def _start(self, job: ScheduledJob, in_hand: dict[uuid.UUID, ScheduledJob]) -> None:
        """Run a claimed job unless its lease was lost while it waited; it leaves ``in_hand``
        (never to be handed back) once started."""
        if job.id not in in_hand:
            log.warning("job lease was taken over while it waited", job_id=str(job.id))
            return
        try:
            await self._run(job)
        except Exception:  # finishing failed (a database hiccup): the lease runs out instead
            log.exception("finishing a job failed", job_id=str(job.id), kind=job.kind)
        finally:
            in_hand.pop(job.id, None)

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
        said: str | None = None
        try:
            handler = self.handlers.get(job.kind)
            if handler is None:
                raise LookupError(f"no handler for jobs of kind {job.kind!r}")
            said = await handler(job)
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
        if said == PLANNED_AGAIN and error is None:
            return  # its own transaction made it pending again: nothing is left to record
        async with UnitOfWork(self.database) as uow:
            await uow.begin_write()
            kept = await uow.jobs.finish(job.id, self.owner, error=error, retry_at=retry_at)
            # A recurring job (a poll) schedules its own key again: that is no lost lease.
            planned = not kept and await uow.jobs.planned_again(job.id)
            await uow.commit()
        if not (kept or planned):
            log.warning("job lease was lost before it finished", job_id=str(job.id))

    async def run(self, stop: asyncio.Event) -> None:
        """Run due jobs, ``concurrency`` at a time, until ``stop`` is set."""
        in_hand: dict[uuid.UUID, ScheduledJob] = {}
        waiting: asyncio.Queue[tuple[float, ScheduledJob] | None] = asyncio.Queue()
        freed = asyncio.Event()
        unstarted: list[uuid.UUID] = []
        lease = self.lease.total_seconds()

        async def runs() -> None:
            while (turn := await waiting.get()) is not None:
                claimed_at, job = turn
                if stop.is_set() or time.monotonic() - claimed_at > lease:
                    unstarted.append(job.id)  # handed back: any worker may claim it now
                    if not stop.is_set():
                        await self._hand_back([job.id])
                        in_hand.pop(job.id, None)
                else:
                    await self._start(job, in_hand)
                freed.set()

        heartbeat = asyncio.create_task(self._renew(in_hand), name="casedesk-job-heartbeat")
        slots = [
            asyncio.create_task(runs(), name=f"casedesk-job-slot-{n}")
            for n in range(self.concurrency)
        ]
        try:
            while not stop.is_set():
                room = self.batch_size - len(in_hand)
                asked = room if waiting.qsize() < self.concurrency else 0
                jobs: list[ScheduledJob] = []
                if asked > 0:
                    try:
                        jobs = await self._claim(asked)
                    except Exception:  # a database hiccup must not end the worker
                        log.exception("claiming jobs failed")
                now = time.monotonic()
                for job in jobs:
                    in_hand[job.id] = job
                    waiting.put_nowait((now, job))
                freed.clear()
                if asked and len(jobs) < asked:  # nothing more is due: look again in a while
                    await pause(stop, self.idle_seconds)
                elif not stop.is_set():  # more may be due: claim again once a slot frees
                    await _first(stop, freed)
        finally:
            while not waiting.empty():
                if (turn := waiting.get_nowait()) is not None:
                    unstarted.append(turn[1].id)
            for _ in slots:
                waiting.put_nowait(None)
            await asyncio.gather(*slots, return_exceptions=True)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            left = [job_id for job_id in unstarted if job_id in in_hand]
            if left:
                await self._hand_back(left)


async def _first(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
