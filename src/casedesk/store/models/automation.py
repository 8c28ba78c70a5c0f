"""Automation rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.store.base import Base, IdMixin, TenantScoped, TimestampMixin


class Rule(IdMixin, TimestampMixin, TenantScoped, Base):
    """An event rule: on these event types, when the conditions hold, run the actions."""

    __tablename__ = "rules"
    __table_args__ = (Index("ix_rules_tenant_position", "tenant_id", "position"),)

    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(Integer)
    on: Mapped[list[str]] = mapped_column(JSON)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    stop: Mapped[bool] = mapped_column(default=False)


class TimeRule(IdMixin, TimestampMixin, TenantScoped, Base):
    """A time rule: when a case has been so since a moment for this long, run the actions."""

    __tablename__ = "time_rules"
    __table_args__ = (Index("ix_time_rules_tenant_position", "tenant_id", "position"),)

    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(Integer)
    since: Mapped[str] = mapped_column(String(32))
    hours: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[int] = mapped_column(Integer)
    calendar: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
