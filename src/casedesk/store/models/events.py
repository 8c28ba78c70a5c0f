"""The transactional outbox: events written in the same transaction as the change."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.kit.clock import utcnow
from casedesk.store.base import Base, TenantScoped

# SQLite only auto-increments an INTEGER PRIMARY KEY, not a BIGINT one.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class OutboxEvent(TenantScoped, Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_tenant_id_id", "tenant_id", "id"),
        Index("ix_outbox_events_subject", "subject_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    type: Mapped[str] = mapped_column(String(63))
    source: Mapped[str] = mapped_column(String(255))
    subject_id: Mapped[uuid.UUID | None]
    time: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    traceparent: Mapped[str] = mapped_column(String(55))
