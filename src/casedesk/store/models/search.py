"""The search index's documents: one per case, its text as the engines' tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from casedesk.kit.clock import utcnow
from casedesk.store.base import Base, TenantScoped
from casedesk.store.models.events import BigId
from casedesk.store.types import LongText


class SearchDocument(TenantScoped, Base):
    """A case's text as the search engine indexes it (``domain.search.documents``).

    ``public_tokens`` is what everyone who reads the case may find it by; ``internal_tokens``
    its internal notes. Each database indexes the two columns with its own engine (the
    migration ``0034`` builds it: an FTS5 table over these rows on SQLite, ``tsvector``
    columns on PostgreSQL, ``FULLTEXT`` indexes on MariaDB). ``position`` is the feed position
    of the last event the document was rebuilt for: an older event writes nothing over it.
    """

    __tablename__ = "search_documents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    """The integer the engines' indexes name the row by (FTS5 needs an integer rowid)."""
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), unique=True
    )
    public_tokens: Mapped[str] = mapped_column(LongText)
    internal_tokens: Mapped[str] = mapped_column(LongText)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    indexed_at: Mapped[datetime] = mapped_column(default=utcnow)
