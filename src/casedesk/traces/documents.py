"""A trace record as a JSON document: the one shape every tier stores and the API returns.

The hot tier keeps documents as JSON, the queue carries them in batches, SQL keeps the same
fields in columns (headers and bodies as JSON), and reads turn any of them back into this
document, so an answer is the same from whichever tier it came.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from casedesk.traces.records import CallFailure, CapturedBody, TraceRecord

Document = dict[str, Any]


def _body(body: CapturedBody | None) -> dict[str, Any] | None:
    if body is None:
        return None
    return {
        "size": body.size,
        "content_type": body.content_type,
        "text": body.text,
        "truncated": body.truncated,
        "sha256": body.sha256,
    }


def document(record: TraceRecord) -> Document:
    return {
        "id": str(record.id),
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "parent_span_id": record.parent_span_id,
        "tenant_id": str(record.tenant_id),
        "execution_id": record.execution_id,
        "connection_id": str(record.connection_id) if record.connection_id else None,
        "connector": record.connector,
        "action": record.action,
        "attempt": record.attempt,
        "method": record.method,
        "url": record.url,
        "status": record.status,
        "started_at": record.started_at.isoformat(),
        "duration_ms": record.duration_ms,
        "ttfb_ms": record.ttfb_ms,
        "request": {
            "headers": [list(p) for p in record.request_headers],
            "body": _body(record.request_body),
        },
        "response": {
            "headers": [list(p) for p in record.response_headers],
            "body": _body(record.response_body),
        },
        "error": None
        if record.error is None
        else {"type": record.error.type, "message": record.error.message},
    }


def _captured(body: dict[str, Any] | None) -> CapturedBody | None:
    return None if body is None else CapturedBody(**body)


def record_of(doc: Document) -> TraceRecord:
    """The record a document was made from (the inverse of ``document``)."""
    error = doc["error"]
    return TraceRecord(
        id=uuid.UUID(doc["id"]),
        trace_id=doc["trace_id"],
        span_id=doc["span_id"],
        parent_span_id=doc["parent_span_id"],
        tenant_id=uuid.UUID(doc["tenant_id"]),
        execution_id=doc["execution_id"],
        connection_id=uuid.UUID(doc["connection_id"]) if doc["connection_id"] else None,
        connector=doc["connector"],
        action=doc["action"],
        attempt=doc["attempt"],
        method=doc["method"],
        url=doc["url"],
        request_headers=tuple((n, v) for n, v in doc["request"]["headers"]),
        request_body=_captured(doc["request"]["body"]),
        status=doc["status"],
        response_headers=tuple((n, v) for n, v in doc["response"]["headers"]),
        response_body=_captured(doc["response"]["body"]),
        started_at=datetime.fromisoformat(doc["started_at"]),
        duration_ms=doc["duration_ms"],
        ttfb_ms=doc["ttfb_ms"],
        error=None if error is None else CallFailure(**error),
    )


def status_class(doc: Document) -> str:
    """``2xx`` … ``5xx`` by status, or ``error`` for an attempt that got no response."""
    status = doc["status"]
    return "error" if status is None else f"{status // 100}xx"
