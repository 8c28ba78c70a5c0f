"""Macros: canned replies with placeholders and the case changes applied with them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.store.base import Base, IdMixin, TenantScoped, TimestampMixin
from casedesk.store.types import LongText


class Macro(IdMixin, TimestampMixin, TenantScoped, Base):
    """A personal macro (``owner_id`` set, seen by its owner only) or a shared one (none)."""

    __tablename__ = "macros"
    __table_args__ = (Index("ix_macros_owner_id", "owner_id"),)

    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(LongText)
    public: Mapped[bool] = mapped_column(default=False, server_default=false())
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
