"""The transactional outbox: events written in the same transaction as the change."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.kit.clock import utcnow
from casedesk.store.base import Base, IdMixin, TenantScoped

# SQLite only auto-increments an INTEGER PRIMARY KEY, not a BIGINT one.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class OutboxEvent(TenantScoped, Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_tenant_id_id", "tenant_id", "id"),
        Index("ix_outbox_events_subject", "subject_id", "id"),
        Index("ix_outbox_events_pending", "published_at", "id"),
        Index("ux_outbox_events_position", "position", unique=True),
        Index("ix_outbox_events_tenant_position", "tenant_id", "position"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    type: Mapped[str] = mapped_column(String(63))
    source: Mapped[str] = mapped_column(String(255))
    subject_type: Mapped[str] = mapped_column(String(31), server_default="case")
    """What the event is about (``case``, ``connection``, ...); ``subject_id`` is its id."""
    subject_id: Mapped[uuid.UUID | None]
    time: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    traceparent: Mapped[str] = mapped_column(String(55))
    published_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]
    """When the relay moved the event aside because it cannot be published (a dead letter
    of the ``relay`` group says why); a replay clears it."""
    position: Mapped[int | None] = mapped_column(BigInteger)
    """The event's place in the feed, given by the relay when it publishes the event: it only
    grows in commit order, which the insert-time ``id`` does not."""


class ProcessedEvent(TenantScoped, Base):
    """An event a consumer group has handled; redelivery of it is skipped."""

    __tablename__ = "processed_events"
    __table_args__ = (Index("ix_processed_events_processed_at", "processed_at"),)

    consumer_group: Mapped[str] = mapped_column(String(63), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeadLetter(IdMixin, TenantScoped, Base):
    """An event a consumer group gave up on after its attempts, kept for people to look at."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_tenant_group", "tenant_id", "consumer_group", "id"),)

    consumer_group: Mapped[str] = mapped_column(String(63))
    event_id: Mapped[uuid.UUID]
    type: Mapped[str] = mapped_column(String(63))
    sequence: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    envelope: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    replay_status: Mapped[str | None] = mapped_column(String(16))
    """None until an admin asks for a replay, then pending, succeeded or failed."""
    replay_requested_at: Mapped[datetime | None]
    replayed_at: Mapped[datetime | None]
    replay_error: Mapped[str | None] = mapped_column(Text)
