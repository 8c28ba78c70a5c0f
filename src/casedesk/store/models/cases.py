"""Queues, state machines, templates, customers, cases, tasks, comments and action records."""

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
    false,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from casedesk.kit.clock import utcnow
from casedesk.store.base import Base, IdMixin, TenantScoped, TimestampMixin
from casedesk.store.types import LongText


class Queue(IdMixin, TimestampMixin, TenantScoped, Base):
    __tablename__ = "queues"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    code: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    assignment: Mapped[str] = mapped_column(String(16), default="manual", server_default="manual")
    """how a case that arrives without an assignee gets one: manual, round_robin, least_loaded"""
    round_robin_last_id: Mapped[uuid.UUID | None]
    """the user round robin gave the last case to; the next one goes to the user after"""


class QueueMember(IdMixin, TenantScoped, Base):
    """An agent who works a queue: its cases are theirs to pick up, and automatic assignment
    chooses among a queue's members (among everyone, for a queue without members)."""

    __tablename__ = "queue_members"
    __table_args__ = (
        UniqueConstraint("queue_id", "user_id"),
        Index("ix_queue_members_user_id", "user_id"),
    )

    queue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class StateMachine(IdMixin, TimestampMixin, TenantScoped, Base):
    """A named machine with an editable draft; publishing freezes the draft as a version."""

    __tablename__ = "state_machines"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    code: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    draft: Mapped[dict[str, Any]] = mapped_column(JSON)
    latest_version: Mapped[int] = mapped_column(Integer, default=0)


class StateMachineVersion(IdMixin, TenantScoped, Base):
    __tablename__ = "state_machine_versions"
    __table_args__ = (UniqueConstraint("machine_id", "version"),)

    machine_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("state_machines.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[uuid.UUID | None]


class Template(IdMixin, TimestampMixin, TenantScoped, Base):
    """A case type: its form, its state machine and where its cases start."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    code: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    machine_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("state_machines.id"))
    form_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    default_queue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("queues.id"))
    default_priority: Mapped[int] = mapped_column(SmallInteger, default=1)
    public: Mapped[bool] = mapped_column(default=False, server_default=false())
    """customers may open cases of this type themselves, in the portal"""


class Customer(IdMixin, TimestampMixin, TenantScoped, Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))


class CaseCounter(Base):
    """The next case number of a tenant; its row lock serialises numbering, not whole creates."""

    __tablename__ = "case_counters"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    last_number: Mapped[int] = mapped_column(BigInteger, default=0)


class Case(IdMixin, TimestampMixin, TenantScoped, Base):
    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        UniqueConstraint("tenant_id", "channel", "external_ref"),
        Index("ix_cases_tenant_id_id", "tenant_id", "id"),
        Index("ix_cases_tenant_state", "tenant_id", "state", "id"),
        Index("ix_cases_tenant_queue", "tenant_id", "queue_id", "id"),
        Index("ix_cases_tenant_queue_state", "tenant_id", "queue_id", "state", "id"),
        Index("ix_cases_tenant_assignee", "tenant_id", "assignee_id", "id"),
        Index("ix_cases_tenant_customer", "tenant_id", "customer_id", "id"),
        Index("ix_cases_tenant_template", "tenant_id", "template_id", "id"),
        Index("ix_cases_tenant_priority", "tenant_id", "priority", "id"),
        Index("ix_cases_tenant_updated", "tenant_id", "updated_at", "id"),
        Index("ix_cases_tenant_closed", "tenant_id", "closed", "id"),
        Index("ix_cases_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_cases_parent_id", "parent_id"),
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # UPDATE ... WHERE version = :seen, so a concurrent change fails instead of winning.
        return {"version_id_col": cls.__table__.c.version}

    number: Mapped[int] = mapped_column(BigInteger)
    template_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("templates.id"))
    machine_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("state_machine_versions.id"))
    state: Mapped[str] = mapped_column(String(63))
    state_entered_at: Mapped[datetime | None]
    """When the case entered its state by an action; null: its initial state, since creation."""
    closed: Mapped[bool] = mapped_column(default=False)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(LongText)
    priority: Mapped[int] = mapped_column(SmallInteger)
    queue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("queues.id"))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(63))
    external_ref: Mapped[str | None] = mapped_column(String(255))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"))
    form: Mapped[dict[str, Any]] = mapped_column(JSON)
    tags: Mapped[list[str]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    closed_at: Mapped[datetime | None]
    rating_score: Mapped[int | None] = mapped_column(SmallInteger)
    rating_comment: Mapped[str | None] = mapped_column(LongText)
    rated_at: Mapped[datetime | None]


class Task(IdMixin, TimestampMixin, TenantScoped, Base):
    """The unit of assignment: pending → processing → done."""

    __tablename__ = "tasks"
    __table_args__ = (
        # The tenant in it lets SQLite's planner take it without statistics (over the
        # tenant's indexes, which would scan every task of the tenant).
        Index("ix_tasks_case", "case_id", "tenant_id", "id"),
        Index("ix_tasks_tenant_queue_status", "tenant_id", "queue_id", "status"),
        Index("ix_tasks_tenant_assignee_status", "tenant_id", "assignee_id", "status"),
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # Two agents accepting one task at once: the second UPDATE finds another version
        # and fails (409) instead of both succeeding.
        return {"version_id_col": cls.__table__.c.version}

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    queue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("queues.id"))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16))
    status_before_close: Mapped[str | None] = mapped_column(String(16))
    accepted_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, server_default="1")


class Comment(IdMixin, TenantScoped, Base):
    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_case_id", "case_id", "id"),
        UniqueConstraint("tenant_id", "channel", "external_id"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(LongText)
    public: Mapped[bool]
    author_type: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[uuid.UUID | None]
    author_name: Mapped[str | None] = mapped_column(String(320))
    channel: Mapped[str | None] = mapped_column(String(63))
    external_id: Mapped[str | None] = mapped_column(String(255))
    thread_id: Mapped[str | None] = mapped_column(String(255))
    """The provider's thread the message was in, for a comment that came from a channel."""
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    """For a public comment on a case from a channel: ``pending``, ``sent`` or ``failed``."""
    delivery_error: Mapped[str | None] = mapped_column(LongText)
    delivered_id: Mapped[str | None] = mapped_column(String(255))
    """The provider's id of the message the comment was sent as."""
    delivery_attempts: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    attachment_count: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    """How many attachments the comment has: reads of comments without any look no further."""
    edited_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    """A channel message its author deleted at the source: kept, shown as deleted."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelMessageRecord(IdMixin, TenantScoped, Base):
    """A message of a channel that casedesk knows: received (it opened a case or is a
    comment) or sent (an agent's reply). Threads are found through these rows."""

    __tablename__ = "channel_messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "channel", "external_id"),
        Index("ix_channel_messages_thread", "tenant_id", "channel", "thread_id", "id"),
        Index("ix_channel_messages_message_key", "tenant_id", "message_key"),
        Index("ix_channel_messages_case", "case_id", "id"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    comment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("comments.id", ondelete="SET NULL")
    )
    channel: Mapped[str] = mapped_column(String(63))
    """The connector's id: ``gmail``, ``outlook``, ``teams``, ``slack``."""
    connection_id: Mapped[uuid.UUID | None]
    """The connection it came through, and replies go back through."""
    external_id: Mapped[str] = mapped_column(String(255))
    thread_id: Mapped[str | None] = mapped_column(String(255))
    message_key: Mapped[str | None] = mapped_column(String(255))
    """Its RFC 5322 Message-ID, without angle brackets."""
    direction: Mapped[str] = mapped_column(String(8))
    """``in`` or ``out``."""
    subject: Mapped[str | None] = mapped_column(String(998))
    reply: Mapped[dict[str, Any]] = mapped_column(JSON)
    """What the connector needs to answer it (``ChannelMessage.reply``)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ActionRecord(IdMixin, TenantScoped, Base):
    """The audit trail of a case: one row per activity, with what changed and who did it."""

    __tablename__ = "action_records"
    __table_args__ = (Index("ix_action_records_case_id", "case_id", "id"),)

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    task_id: Mapped[uuid.UUID | None]
    code: Mapped[str] = mapped_column(String(63))
    memo: Mapped[dict[str, Any]] = mapped_column(JSON)
    operator_type: Mapped[str] = mapped_column(String(16))
    operator_id: Mapped[str | None] = mapped_column(String(64))
    operator_name: Mapped[str | None] = mapped_column(String(320))
    trace_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(IdMixin, TenantScoped, Base):
    """A request made with an ``Idempotency-Key``: its fingerprint and the response it got."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("tenant_id", "scope", "key"),
        Index("ix_idempotency_records_created_at", "created_at"),
    )

    scope: Mapped[str] = mapped_column(String(63))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
