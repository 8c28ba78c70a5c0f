"""Trace records kept durably: one row per attempt of a third-party call."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.store.base import Base, TenantScoped


class TraceRow(TenantScoped, Base):
    """The SQL tier of the action-trace store; the id is the record's, so writes are
    idempotent: a batch written twice leaves each record once."""

    __tablename__ = "trace_records"
    __table_args__ = (
        Index("ix_trace_records_tenant_started", "tenant_id", "started_at", "id"),
        Index("ix_trace_records_tenant_execution", "tenant_id", "execution_id", "started_at"),
        Index("ix_trace_records_tenant_connection", "tenant_id", "connection_id", "started_at"),
        Index("ix_trace_records_started", "started_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    execution_id: Mapped[str | None] = mapped_column(String(64))
    connection_id: Mapped[uuid.UUID | None]
    connector: Mapped[str] = mapped_column(String(63))
    action: Mapped[str | None] = mapped_column(String(63))
    attempt: Mapped[int] = mapped_column(SmallInteger)
    method: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(SmallInteger)
    started_at: Mapped[datetime]
    duration_ms: Mapped[float] = mapped_column(Float)
    ttfb_ms: Mapped[float | None] = mapped_column(Float)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
