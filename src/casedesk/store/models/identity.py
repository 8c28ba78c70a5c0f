"""Tenants, users, API keys, and people's sign-in: sessions and one-time links."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.kit.clock import utcnow
from casedesk.store.base import Base, IdMixin, TenantScoped, TimestampMixin

ROLES = ("admin", "agent", "viewer")


class Tenant(IdMixin, TimestampMixin, Base):
    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    edition: Mapped[str] = mapped_column(String(63), default="standard")
    enabled: Mapped[bool] = mapped_column(default=True)
    attachment_max_bytes: Mapped[int | None] = mapped_column(BigInteger)
    """The largest file the tenant may attach; none: the deployment's limit (its ceiling)."""
    attachment_quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    """What the tenant's files may add up to (0: no quota); none: the deployment's quota."""


class User(IdMixin, TimestampMixin, TenantScoped, Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "email"),
        CheckConstraint("role IN ('admin', 'agent', 'viewer')", name="role"),
    )

    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    """argon2id; none until the user sets a password through a one-time link."""
    failed_sign_ins: Mapped[int] = mapped_column(default=0, server_default="0")
    sign_in_blocked_until: Mapped[datetime | None]
    locale: Mapped[str | None] = mapped_column(String(16))
    """the screens' language (``en``, ``zh-Hans``); none: the browser's"""
    time_zone: Mapped[str | None] = mapped_column(String(64))
    """an IANA zone for dates and times on screen; none: UTC"""
    availability: Mapped[str] = mapped_column(
        String(16), default="available", server_default="available"
    )
    """``available`` or ``away``: automatic assignment passes over an away user"""

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None


class ApiKey(IdMixin, TenantScoped, Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_user_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class WebSession(IdMixin, TenantScoped, Base):
    """A person signed in from a browser: the cookie's token, kept only as its hash."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    user_agent: Mapped[str | None] = mapped_column(String(300))
    address: Mapped[str | None] = mapped_column(String(64))


class OneTimeLink(IdMixin, TenantScoped, Base):
    """An invitation or a password reset: a link that works once, until it expires."""

    __tablename__ = "one_time_links"
    __table_args__ = (
        Index("ix_one_time_links_user_id", "user_id"),
        CheckConstraint("purpose IN ('invite', 'reset')", name="purpose"),
    )

    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
