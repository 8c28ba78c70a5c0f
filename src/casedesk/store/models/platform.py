"""The integration platform's tables: custom connectors, connections, subscriptions with
their cursors and seen ids, and the inbox of deliveries to instant triggers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.kit.clock import utcnow
from casedesk.store.base import Base, IdMixin, TenantScoped, TimestampMixin
from casedesk.store.types import LongText, exact_string


class Connector(IdMixin, TimestampMixin, TenantScoped, Base):
    """A tenant's own connector: an editable draft manifest, published as versions."""

    __tablename__ = "connectors"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    code: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    draft: Mapped[dict[str, Any]] = mapped_column(JSON)
    latest_version: Mapped[int] = mapped_column(Integer, default=0)


class ConnectorVersion(IdMixin, TenantScoped, Base):
    __tablename__ = "connector_versions"
    __table_args__ = (UniqueConstraint("connector_id", "version"),)

    connector_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[uuid.UUID | None]


class Connection(IdMixin, TimestampMixin, TenantScoped, Base):
    """A tenant's account at a service, through a connector (built in, or its own, pinned to
    a version). Secrets and tokens are sealed; they never leave the process again."""

    __tablename__ = "connections"
    __table_args__ = (Index("ix_connections_tenant_connector", "tenant_id", "connector", "id"),)

    name: Mapped[str] = mapped_column(String(200))
    connector: Mapped[str] = mapped_column(String(63))
    connector_version: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    secrets_sealed: Mapped[str | None] = mapped_column(Text)
    """The secret fields, as one sealed JSON object."""
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active, needs_reauth (an admin must authorize it again) or disabled."""
    status_reason: Mapped[str | None] = mapped_column(Text)
    token_sealed: Mapped[str | None] = mapped_column(Text)
    """OAuth2 tokens (access, refresh, type, scope), as one sealed JSON object."""
    token_expires_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Authorization(IdMixin, TenantScoped, Base):
    """An OAuth2 authorization under way: the state sent to the provider and its PKCE verifier."""

    __tablename__ = "connection_authorizations"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE")
    )
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    verifier_sealed: Mapped[str | None] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    """When the provider's callback brought the state back; a state is good once."""


class Subscription(IdMixin, TimestampMixin, TenantScoped, Base):
    """A workflow's trigger at work: which connection and trigger, and where it stands.

    It belongs to its workflow, not to a version of it: republishing keeps the cursor."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_tenant_status", "tenant_id", "status", "id"),)

    workflow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), unique=True
    )
    connection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL")
    )
    trigger: Mapped[str] = mapped_column(String(63))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active, failing (its last runs failed; it keeps trying) or disabled."""
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Where the source is up to (``{"value": …}``); null until the first run's baseline."""
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_run_at: Mapped[datetime | None]
    hook_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    """SHA-256 of the token in ``/hooks/{token}`` (instant triggers): how a delivery finds
    its subscription in one indexed lookup."""
    hook_token_sealed: Mapped[str | None] = mapped_column(Text)
    """The token itself, sealed, so an admin can read the hook URL again."""
    external_id: Mapped[str | None] = mapped_column(String(255))
    """The subscription's id at the source, where the source keeps one (Graph)."""
    external_expires_at: Mapped[datetime | None]
    secrets_sealed: Mapped[str | None] = mapped_column(Text)
    """The subscription's own secrets, as one sealed JSON object: a hook's signing secret
    when it has no connection, the client state casedesk gave the source."""
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class SeenItem(TenantScoped, Base):
    """An id a subscription has seen at its source: never fired twice."""

    __tablename__ = "subscription_seen_items"
    __table_args__ = (Index("ix_subscription_seen_items_seen_at", "subscription_id", "seen_at"),)

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[str] = mapped_column(exact_string(255), primary_key=True)
    """Compared as written: ``abc`` and ``ABC`` are two items (on MariaDB too)."""
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboxDelivery(IdMixin, TenantScoped, Base):
    """A delivery to an instant trigger, stored before it is acknowledged; a worker handles it."""

    __tablename__ = "inbox_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_inbox_deliveries_pending", "status", "received_at"),
    )

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(255))
    """The source's id of the event (its retries repeat it), or the body's SHA-256."""
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(LongText)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, processed or dropped (a lifecycle notification, an ignored event)."""
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
