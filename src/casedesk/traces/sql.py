"""The SQL tier: batches written the fastest way each database offers, read back as documents.

- PostgreSQL: the whole batch as one JSON parameter, turned into rows by the server
  (``json_populate_recordset`` with the table's own row type) in one ``INSERT … SELECT … ON
  CONFLICT DO NOTHING``: one statement, and no Python work per record;
- MariaDB/MySQL: one multi-row ``INSERT IGNORE``;
- SQLite: ``INSERT OR IGNORE`` with executemany.

Each skips records already written, so a batch delivered twice leaves every record once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, delete, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.store.models import TraceRow
from casedesk.store.tenancy import ALL_TENANTS
from casedesk.traces.documents import Document
from casedesk.traces.query import TraceQuery

_COLUMNS = [column.name for column in TraceRow.__table__.columns]
_FROM_JSON = text(
    f"INSERT INTO trace_records ({', '.join(_COLUMNS)}) "  # noqa: S608 - fixed names
    f"SELECT {', '.join(_COLUMNS)} "
    "FROM json_populate_recordset(NULL::trace_records, CAST(:batch AS text)::json) "
    "ON CONFLICT (id) DO NOTHING"
)
"""A document's keys are the table's column names, so the server maps them itself."""
_STATUS_RANGES = {f"{n}xx": (n * 100, n * 100 + 100) for n in range(1, 6)}


def _row(doc: Document) -> dict[str, Any]:
    return {
        "id": uuid.UUID(doc["id"]),
        "tenant_id": uuid.UUID(doc["tenant_id"]),
        "trace_id": doc["trace_id"],
        "span_id": doc["span_id"],
        "parent_span_id": doc["parent_span_id"],
        "execution_id": doc["execution_id"],
        "connection_id": uuid.UUID(doc["connection_id"]) if doc["connection_id"] else None,
        "connector": doc["connector"],
        "action": doc["action"],
        "attempt": doc["attempt"],
        "method": doc["method"],
        "url": doc["url"],
        "status": doc["status"],
        "started_at": datetime.fromisoformat(doc["started_at"]),
        "duration_ms": doc["duration_ms"],
        "ttfb_ms": doc["ttfb_ms"],
        "request": doc["request"],
        "response": doc["response"],
        "error": doc["error"],
    }


def document_of(row: TraceRow) -> Document:
    return {
        "id": str(row.id),
        "trace_id": row.trace_id,
        "span_id": row.span_id,
        "parent_span_id": row.parent_span_id,
        "tenant_id": str(row.tenant_id),
        "execution_id": row.execution_id,
        "connection_id": str(row.connection_id) if row.connection_id else None,
        "connector": row.connector,
        "action": row.action,
        "attempt": row.attempt,
        "method": row.method,
        "url": row.url,
        "status": row.status,
        "started_at": row.started_at.isoformat(),
        "duration_ms": row.duration_ms,
        "ttfb_ms": row.ttfb_ms,
        "request": row.request,
        "response": row.response,
        "error": row.error,
    }


async def write_batch(session: AsyncSession, docs: Sequence[Document]) -> None:
    """Write the batch (records of any tenants) in the session's transaction; records
    already stored are skipped."""
    if not docs:
        return
    dialect = (await session.connection()).dialect.name
    if dialect == "postgresql":
        await session.execute(_FROM_JSON, {"batch": orjson.dumps(list(docs)).decode()})
        return
    rows = [_row(doc) for doc in docs]
    if dialect in ("mysql", "mariadb"):
        statement = insert(TraceRow).prefix_with("IGNORE").values(rows)
        await session.execute(statement.execution_options(**{ALL_TENANTS: True}))
    else:
        statement = insert(TraceRow).prefix_with("OR IGNORE")
        await session.execute(statement.execution_options(**{ALL_TENANTS: True}), rows)


async def get(session: AsyncSession, record_id: uuid.UUID) -> Document | None:
    row = await session.scalar(select(TraceRow).where(TraceRow.id == record_id))
    return None if row is None else document_of(row)


async def query(session: AsyncSession, q: TraceQuery) -> list[Document]:
    """The page of the query, newest first; the session's tenant guard scopes it."""
    statement = select(TraceRow)
    if q.execution_id is not None:
        statement = statement.where(TraceRow.execution_id == q.execution_id)
    if q.connection_id is not None:
        statement = statement.where(TraceRow.connection_id == q.connection_id)
    if q.status_class == "error":
        statement = statement.where(TraceRow.status.is_(None))
    elif q.status_class is not None:
        low, high = _STATUS_RANGES[q.status_class]
        statement = statement.where(TraceRow.status >= low, TraceRow.status < high)
    if q.since is not None:
        statement = statement.where(TraceRow.started_at >= q.since)
    if q.until is not None:
        statement = statement.where(TraceRow.started_at < q.until)
    if q.url_contains is not None:
        statement = statement.where(TraceRow.url.contains(q.url_contains, autoescape=True))
    if q.before is not None:
        started, record_id = q.before
        statement = statement.where(
            or_(
                TraceRow.started_at < started,
                and_(TraceRow.started_at == started, TraceRow.id < record_id),
            )
        )
    statement = statement.order_by(TraceRow.started_at.desc(), TraceRow.id.desc()).limit(q.limit)
    return [document_of(row) for row in (await session.scalars(statement)).all()]


async def purge_older_than(session: AsyncSession, cutoff: datetime, *, limit: int) -> int:
    """Delete up to ``limit`` records of every tenant started before ``cutoff``."""
    doomed = (
        select(TraceRow.id)
        .where(TraceRow.started_at < cutoff)
        .limit(limit)
        .execution_options(**{ALL_TENANTS: True})
    )
    ids = list((await session.scalars(doomed)).all())
    if not ids:
        return 0
    await session.execute(
        delete(TraceRow)
        .where(TraceRow.id.in_(ids))
        .execution_options(**{ALL_TENANTS: True, "synchronize_session": False})
    )
    return len(ids)
