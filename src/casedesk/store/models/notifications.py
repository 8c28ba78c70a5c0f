"""A tenant's own templates of the mail casedesk writes, one per kind and language."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.store.base import Base, IdMixin, TenantScoped, TimestampMixin
from casedesk.store.types import LongText


class NotificationTemplate(IdMixin, TimestampMixin, TenantScoped, Base):
    """The tenant's subject, text and (optional) HTML of one kind in one language, used
    instead of the built-in template; none: the built-in one applies."""

    __tablename__ = "notification_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "language"),)

    kind: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(1000))
    text: Mapped[str] = mapped_column(LongText)
    html: Mapped[str | None] = mapped_column(LongText)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    """The admin who saved it last."""
