"""Saved views of the case list: a name, filters and a sort, personal or shared."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.store.base import Base, IdMixin, TenantScoped, TimestampMixin


class SavedView(IdMixin, TimestampMixin, TenantScoped, Base):
    """A view in the workbench's sidebar: the user's own (``owner_id``), or everyone's
    (``owner_id`` None: shared, made by an admin)."""

    __tablename__ = "saved_views"
    __table_args__ = (Index("ix_saved_views_tenant_owner", "tenant_id", "owner_id"),)

    name: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON)
    sort: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(SmallInteger, default=0)
