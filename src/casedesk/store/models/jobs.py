"""Scheduled jobs: work due at a time (SLA checks, time rules), claimed by any worker."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.store.base import Base, IdMixin, TenantScoped, TimestampMixin


class ScheduledJob(IdMixin, TimestampMixin, TenantScoped, Base):
    __tablename__ = "scheduled_jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key"),
        Index("ix_scheduled_jobs_claim", "status", "due_at"),
        Index("ix_scheduled_jobs_finished", "status", "updated_at"),
    )

    kind: Mapped[str] = mapped_column(String(63))
    key: Mapped[str] = mapped_column(String(255))
    """Scheduling the same key again moves the existing job instead of adding one."""
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    traceparent: Mapped[str] = mapped_column(String(55))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[uuid.UUID | None]
