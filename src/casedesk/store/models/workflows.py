"""Workflows (trigger → enrich → filter → steps), their versions, and each run's record."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.kit.clock import utcnow
from casedesk.store.base import Base, IdMixin, TenantScoped, TimestampMixin


class Workflow(IdMixin, TimestampMixin, TenantScoped, Base):
    """A named workflow with an editable draft; publishing freezes the draft as a version."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    code: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    draft: Mapped[dict[str, Any]] = mapped_column(JSON)
    latest_version: Mapped[int] = mapped_column(Integer, default=0)


class WorkflowVersion(IdMixin, TenantScoped, Base):
    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version"),)

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[uuid.UUID | None]


class Execution(IdMixin, TenantScoped, Base):
    """One run of a workflow for one item a trigger produced, with what each step did."""

    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_tenant_workflow", "tenant_id", "workflow_id", "id"),
        Index("ix_executions_tenant_status", "tenant_id", "status", "id"),
        Index("ix_executions_tenant_subscription", "tenant_id", "subscription_id", "id"),
    )

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    workflow_version: Mapped[int] = mapped_column(Integer)
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="SET NULL")
    )
    source_id: Mapped[str | None] = mapped_column(String(255))
    """The item's id at the source."""
    trigger_item: Mapped[dict[str, Any]] = mapped_column(JSON)
    """What the trigger produced: the item, or the ids the enricher turns into it."""
    status: Mapped[str] = mapped_column(String(16), default="queued")
    """queued, running, succeeded, failed, or filtered (the filter said no)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    replay_of: Mapped[uuid.UUID | None]
    traceparent: Mapped[str] = mapped_column(String(55))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ExecutionStep(IdMixin, TenantScoped, Base):
    """What one step of an execution got, gave and took (enrich and filter are steps too)."""

    __tablename__ = "execution_steps"
    __table_args__ = (Index("ix_execution_steps_execution", "execution_id", "position"),)

    execution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(31))
    status: Mapped[str] = mapped_column(String(16))
    input: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    trace_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The trace ids of the third-party calls the step made (``/api/v1/traces?...``)."""
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
