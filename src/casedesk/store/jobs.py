"""The job table's queries: schedule, claim with leases, renew and hand back, finish.

Claiming takes due jobs (and jobs whose lease ran out) with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL and MariaDB, so any number of workers share the table without a fixed split and
never take the same job; on SQLite the claiming transaction holds the write lock instead.
A worker renews the leases of the jobs in its hand while it works through them, so a lease
runs out only when the worker has stopped (or stalled) and another worker takes over.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.kit.clock import utcnow
from casedesk.store.models import ScheduledJob
from casedesk.store.tenancy import ALL_TENANTS

PLANNED_AGAIN = "planned_again"
"""What a job handler returns when it has scheduled its own key again, in the transaction
that did its work (a recurring poll): the scheduler has nothing left to record."""


class LeaseLost(Exception):
    """The job is no longer this worker's: another worker holds it, or it was moved or
    finished. The work must not be done here; whoever holds the job does it."""


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def schedule(
        self,
        *,
        kind: str,
        key: str,
        due_at: datetime,
        payload: dict[str, Any],
        traceparent: str,
        case_id: uuid.UUID | None = None,
    ) -> ScheduledJob:
        """Add the job, or make the job of the same key pending again at the new time.

        Scheduling is a new start: the attempts counted against a job that finished, was
        cancelled or failed (or is being retried) do not count against the new one."""
        job = await self.find(key)
        if job is None:
            job = ScheduledJob(kind=kind, key=key, case_id=case_id)
            self.session.add(job)
        job.due_at, job.payload, job.traceparent = due_at, payload, traceparent
        job.status, job.lease_owner, job.lease_until, job.last_error = "pending", None, None, None
        job.attempts = 0
        return job

    def add(
        self,
        *,
        kind: str,
        key: str,
        due_at: datetime,
        payload: dict[str, Any],
        traceparent: str,
    ) -> ScheduledJob:
        """A job whose key is new (one made of a new row's id): no lookup first."""
        job = ScheduledJob(
            kind=kind,
            key=key,
            due_at=due_at,
            payload=payload,
            traceparent=traceparent,
            status="pending",
            attempts=0,
        )
        self.session.add(job)
        return job

    async def schedule_again(
        self, *, kind: str, key: str, due_at: datetime, payload: dict[str, Any], traceparent: str
    ) -> None:
        """``schedule`` for a key that most likely has its job (a recurring job's own): one
        UPDATE, and only if there was none, the lookup and insert of ``schedule``."""
        result = await self.session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.key == key)
            .values(
                kind=kind,
                due_at=due_at,
                payload=payload,
                traceparent=traceparent,
                status="pending",
                lease_owner=None,
                lease_until=None,
                last_error=None,
                attempts=0,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            await self.schedule(
                kind=kind, key=key, due_at=due_at, payload=payload, traceparent=traceparent
            )

    async def find(self, key: str) -> ScheduledJob | None:
        job: ScheduledJob | None = await self.session.scalar(
            select(ScheduledJob).where(ScheduledJob.key == key)
        )
        return job

    async def cancel(self, key: str) -> None:
        await self.session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.key == key, ScheduledJob.status == "pending")
            .values(status="cancelled")
            .execution_options(synchronize_session=False)
        )

    async def claim(self, owner: str, *, limit: int, lease: timedelta) -> list[ScheduledJob]:
        """Due jobs of every tenant, leased to ``owner`` until ``now + lease``."""
        now = utcnow()
        claimable = or_(
            and_(ScheduledJob.status == "pending", ScheduledJob.due_at <= now),
            and_(ScheduledJob.status == "running", ScheduledJob.lease_until < now),
        )
        statement = (
            select(ScheduledJob)
            .where(claimable)
            .order_by(ScheduledJob.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(**{ALL_TENANTS: True})
        )
        jobs = list((await self.session.scalars(statement)).all())
        for job in jobs:
            job.status, job.lease_owner, job.lease_until = "running", owner, now + lease
            job.attempts += 1
        return jobs

    async def renew(
        self, job_ids: Collection[uuid.UUID], owner: str, *, lease: timedelta
    ) -> set[uuid.UUID]:
        """Extend ``owner``'s leases on ``job_ids`` to ``now + lease``; returns the ids it
        still holds (the others were taken over, moved or finished meanwhile).

        The rows are locked first, in id order, skipping those another transaction holds (a
        job finishing right now, one a handler's transaction touches, or, on MariaDB, one a
        claim's scan locks for a moment): a renewal never waits, so it cannot deadlock with
        them. The skipped rows are looked at once more: one that can be locked now is renewed
        if it is still this owner's and is gone if not; one still locked counts as held, as
        whoever holds it checks its lease again, and the next beat renews it.
        """
        if not job_ids:
            return set()
        options = {ALL_TENANTS: True}
        ours = set(
            (
                await self.session.scalars(
                    select(ScheduledJob.id)
                    .where(
                        ScheduledJob.id.in_(list(job_ids)),
                        ScheduledJob.lease_owner == owner,
                        ScheduledJob.status == "running",
                    )
                    .order_by(ScheduledJob.id)
                    .with_for_update(skip_locked=True)
                    .execution_options(**options)
                )
            ).all()
        )
        rest = set(job_ids) - ours
        still_locked: set[uuid.UUID] = set()
        if rest:
            # A row skipped above may have been locked only for a moment (another worker's
            # claim scanning past it): it is not lost unless, lockable now, it is not ours.
            lockable = (
                await self.session.execute(
                    select(ScheduledJob.id, ScheduledJob.lease_owner, ScheduledJob.status)
                    .where(ScheduledJob.id.in_(sorted(rest)))
                    .order_by(ScheduledJob.id)
                    .with_for_update(skip_locked=True)
                    .execution_options(**options)
                )
            ).all()
            ours |= {
                job_id
                for job_id, lease_owner, status in lockable
                if lease_owner == owner and status == "running"
            }
            still_locked = rest - {job_id for job_id, _, _ in lockable}
        if ours:
            await self.session.execute(
                update(ScheduledJob)
                .where(ScheduledJob.id.in_(sorted(ours)))
                .values(lease_until=utcnow() + lease)
                .execution_options(**options, synchronize_session=False)
            )
        return ours | still_locked

    async def hand_back(self, job_ids: Collection[uuid.UUID], owner: str) -> None:
        """Give up ``owner``'s leases on jobs it claimed but did not start: they are pending
        again, due as they were, and the claim does not count as an attempt."""
        if not job_ids:
            return
        await self.session.execute(
            update(ScheduledJob)
            .where(
                ScheduledJob.id.in_(list(job_ids)),
                ScheduledJob.lease_owner == owner,
                ScheduledJob.status == "running",
            )
            .values(
                status="pending",
                lease_owner=None,
                lease_until=None,
                attempts=ScheduledJob.attempts - 1,
            )
            .execution_options(**{ALL_TENANTS: True, "synchronize_session": False})
        )

    async def hold(self, job: ScheduledJob) -> None:
        """Check, with the job's row locked until commit, that the worker that claimed
        ``job`` still holds its unexpired lease; raise ``LeaseLost`` if not.

        A handler calls this in the transaction that commits it to an effect outside the
        database (a webhook POST), so that a worker whose lease ran out does nothing."""
        current = await self.session.scalar(
            select(ScheduledJob)
            .where(ScheduledJob.id == job.id)
            .with_for_update()
            .execution_options(**{ALL_TENANTS: True})
        )
        if (
            current is None
            or current.status != "running"
            or current.lease_owner != job.lease_owner
            or current.lease_until is None
            or current.lease_until <= utcnow()
        ):
            raise LeaseLost(f"the lease on job {job.id} ({job.key}) is no longer held")

    async def planned_again(self, job_id: uuid.UUID) -> bool:
        """Whether the job is pending again with nobody's lease: scheduled anew while it ran
        (a recurring job plans its own next run), rather than taken over by another worker."""
        status = await self.session.scalar(
            select(ScheduledJob.status)
            .where(ScheduledJob.id == job_id, ScheduledJob.lease_owner.is_(None))
            .execution_options(**{ALL_TENANTS: True})
        )
        return status == "pending"

    async def finish(
        self, job_id: uuid.UUID, owner: str, *, error: str | None, retry_at: datetime | None
    ) -> bool:
        """Record the outcome if ``owner`` still holds the lease; False if it was lost."""
        status = "done" if error is None else ("pending" if retry_at else "failed")
        values: dict[str, Any] = {
            "status": status,
            "lease_owner": None,
            "lease_until": None,
            "last_error": error,
        }
        if retry_at is not None:
            values["due_at"] = retry_at
        result = await self.session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.id == job_id, ScheduledJob.lease_owner == owner)
            .values(**values)
            .execution_options(**{ALL_TENANTS: True, "synchronize_session": False})
        )
        return bool(getattr(result, "rowcount", 0))
