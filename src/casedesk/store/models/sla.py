"""SLA policies and the SLA clocks of each case."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.store.base import Base, IdMixin, TenantScoped, TimestampMixin


class SlaPolicy(IdMixin, TimestampMixin, TenantScoped, Base):
    """Targets for the cases of a template and/or priority (null: any), in business time."""

    __tablename__ = "sla_policies"
    __table_args__ = (UniqueConstraint("tenant_id", "template_id", "priority"),)

    name: Mapped[str] = mapped_column(String(200))
    template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("templates.id"))
    priority: Mapped[int | None] = mapped_column(SmallInteger)
    first_response_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    warning_percent: Mapped[int] = mapped_column(SmallInteger, default=80)
    calendar: Mapped[dict[str, Any]] = mapped_column(JSON)


class CaseSla(IdMixin, TimestampMixin, TenantScoped, Base):
    """One SLA clock of a case: running, paused (in a pending state), met or breached."""

    __tablename__ = "case_slas"
    __table_args__ = (
        UniqueConstraint("case_id", "metric"),
        # the list's "SLA due soon": running clocks by their target
        Index("ix_case_slas_tenant_status_target", "tenant_id", "status", "target_at"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    policy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sla_policies.id"))
    metric: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    target_minutes: Mapped[int] = mapped_column(Integer)
    target_at: Mapped[datetime | None]
    warning_at: Mapped[datetime | None]
    remaining_seconds: Mapped[int | None] = mapped_column(Integer)
    warned: Mapped[bool] = mapped_column(default=False)
    met_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    applied_sequence: Mapped[int | None] = mapped_column(BigInteger)
    """The outbox sequence of the last event of the case this clock accounts for: events
    handled out of order are applied in sequence order, each once."""
