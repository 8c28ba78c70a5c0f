"""What a reader asks of the trace store, the same for the hot tier and SQL.

Answers are newest first, ordered by (started_at, id) descending; a page continues strictly
before the last (started_at, id) of the previous page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from casedesk.traces.documents import Document, status_class

StatusClass = Literal["1xx", "2xx", "3xx", "4xx", "5xx", "error"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceQuery:
    tenant_id: uuid.UUID
    execution_id: str | None = None
    connection_id: uuid.UUID | None = None
    status_class: StatusClass | None = None
    since: datetime | None = None
    """Started at or after."""
    until: datetime | None = None
    """Started before."""
    url_contains: str | None = None
    before: tuple[datetime, uuid.UUID] | None = None
    """Only records strictly older than this (started_at, id): the page cursor."""
    limit: int = 50

    def matches(self, doc: Document) -> bool:
        """Whether a document answers the query (its tenant aside, which the tier checks)."""
        started = datetime.fromisoformat(doc["started_at"])
        if self.execution_id is not None and doc["execution_id"] != self.execution_id:
            return False
        if self.connection_id is not None and doc["connection_id"] != str(self.connection_id):
            return False
        if self.status_class is not None and status_class(doc) != self.status_class:
            return False
        if self.since is not None and started < self.since:
            return False
        if self.until is not None and started >= self.until:
            return False
        if self.url_contains is not None and self.url_contains not in doc["url"]:
            return False
        return self.before is None or (started, uuid.UUID(doc["id"])) < self.before


def newest_first(docs: list[Document]) -> list[Document]:
    return sorted(
        docs,
        key=lambda d: (datetime.fromisoformat(d["started_at"]), uuid.UUID(d["id"])),
        reverse=True,
    )
