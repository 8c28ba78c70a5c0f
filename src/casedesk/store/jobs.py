"""The job table's queries: schedule, claim with leases, finish.

Claiming takes due jobs (and jobs whose lease ran out) with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL and MariaDB, so any number of workers share the table without a fixed split and
never take the same job; on SQLite the claiming transaction holds the write lock instead.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.kit.clock import utcnow
from casedesk.store.models import ScheduledJob
from casedesk.store.tenancy import ALL_TENANTS


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
        """Add the job, or move the pending job of the same key to the new time."""
        job = await self.find(key)
        if job is None:
            job = ScheduledJob(kind=kind, key=key, case_id=case_id, attempts=0)
            self.session.add(job)
        job.due_at, job.payload, job.traceparent = due_at, payload, traceparent
        job.status, job.lease_owner, job.lease_until, job.last_error = "pending", None, None, None
        return job

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
