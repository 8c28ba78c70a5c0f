"""Files attached to a case or one of its comments; their bytes live in the blob store."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.kit.clock import utcnow
from casedesk.store.base import Base, IdMixin, TenantScoped


class Attachment(IdMixin, TenantScoped, Base):
    """One file as a case received it. Rows with the same ``sha256`` (of any tenant) share
    one blob; ``content_type`` is what the bytes are, ``declared_type`` what the sender said."""

    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_case", "case_id", "id"),
        Index("ix_attachments_sha256", "sha256"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    comment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE")
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    declared_type: Mapped[str | None] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    inline: Mapped[bool] = mapped_column(default=False)
    """Shown in the message's body (an image a mail refers to as ``cid:``)."""
    content_id: Mapped[str | None] = mapped_column(String(255))
    uploaded_by_type: Mapped[str] = mapped_column(String(16))
    uploaded_by_id: Mapped[str | None] = mapped_column(String(64))
    uploaded_by_name: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
