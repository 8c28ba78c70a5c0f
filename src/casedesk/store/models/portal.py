"""Customers' sign-in to the portal: their browser sessions and one-time sign-in links.

Kept apart from the people's ``web_sessions`` and ``one_time_links``: a customer is no user,
and each table keeps a required owner instead of two nullable ones and a check.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.kit.clock import utcnow
from casedesk.store.base import Base, IdMixin, TenantScoped


class PortalSession(IdMixin, TenantScoped, Base):
    """A customer signed in to the portal: the cookie's token, kept only as its hash."""

    __tablename__ = "portal_sessions"
    __table_args__ = (Index("ix_portal_sessions_customer_id", "customer_id"),)

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class PortalLink(IdMixin, TenantScoped, Base):
    """A sign-in link sent to a customer's address: it works once, until it expires."""

    __tablename__ = "portal_links"
    __table_args__ = (Index("ix_portal_links_customer_id", "customer_id"),)

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
