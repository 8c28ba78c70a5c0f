"""The action trace: every third-party call, to list, open, follow live and export as HAR."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from casedesk import __version__
from casedesk.api import API_V1
from casedesk.api.deps import ContainerDep, CursorParam, PrincipalDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.identity.roles import Role
from casedesk.kit.cursors import CursorCodec
from casedesk.kit.errors import NotFound, ServiceUnavailable
from casedesk.kit.values import Instant
from casedesk.traces.documents import Document
from casedesk.traces.following import matching
from casedesk.traces.har import har_log
from casedesk.traces.hot import HotStoreUnavailable
from casedesk.traces.query import StatusClass, TraceQuery

router = APIRouter(prefix=f"{API_V1}/traces", tags=["traces"], route_class=ApiRoute)
HEARTBEAT_SECONDS = 15.0
HAR_MOST = 5000


class TraceSummary(BaseModel):
    id: uuid.UUID
    trace_id: str
    span_id: str
    execution_id: str | None
    connection_id: uuid.UUID | None
    connector: str
    action: str | None
    attempt: int
    method: str
    url: str
    status: int | None
    started_at: datetime
    duration_ms: float
    ttfb_ms: float | None
    error: dict[str, Any] | None


class TracePage(BaseModel):
    items: list[TraceSummary]
    next_cursor: str | None


CURSORS: CursorCodec[tuple[datetime, uuid.UUID]] = CursorCodec("traces", tuple[Instant, uuid.UUID])
"""Newest first: the (started_at, id) of the last record of a page."""


def _cursor(doc: Document) -> str:
    return CURSORS.encode((datetime.fromisoformat(doc["started_at"]), uuid.UUID(doc["id"])))


def _before(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    return None if cursor is None else CURSORS.decode(cursor)


class _Filters:
    """The query parameters every read of a set of traces takes."""

    def __init__(
        self,
        execution_id: Annotated[str | None, Query(max_length=64)] = None,
        connection_id: uuid.UUID | None = None,
        status: Annotated[StatusClass | None, Query(description="2xx … 5xx, or error")] = None,
        since: Annotated[Instant | None, Query(description="started at or after")] = None,
        until: Annotated[Instant | None, Query(description="started before")] = None,
        url: Annotated[str | None, Query(max_length=500, description="URL contains")] = None,
    ) -> None:
        self.execution_id, self.connection_id, self.status = execution_id, connection_id, status
        self.since, self.until, self.url = since, until, url

    def query(self, tenant_id: uuid.UUID, *, limit: int, cursor: str | None) -> TraceQuery:
        return TraceQuery(
            tenant_id=tenant_id,
            execution_id=self.execution_id,
            connection_id=self.connection_id,
            status_class=self.status,
            since=self.since,
            until=self.until,
            url_contains=self.url,
            before=_before(cursor),
            limit=limit,
        )


@router.get("", response_model=TracePage, summary="Third-party calls, newest first (admins)")
async def list_traces(
    principal: PrincipalDep,
    container: ContainerDep,
    filters: Annotated[_Filters, Depends()],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: CursorParam = None,
) -> TracePage:
    principal.require(Role.ADMIN, "reading traces")
    query = filters.query(principal.tenant_id, limit=limit + 1, cursor=cursor)
    docs = await container.trace_reader.query(query)
    page, more = docs[:limit], len(docs) > limit
    return TracePage(
        items=[TraceSummary.model_validate(doc) for doc in page],
        next_cursor=_cursor(page[-1]) if more else None,
    )


@router.get(
    ".har",
    summary="The filtered traces as a HAR 1.2 file, for a browser's developer tools (admins)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
async def export_har(
    principal: PrincipalDep,
    container: ContainerDep,
    filters: Annotated[_Filters, Depends()],
    limit: Annotated[int, Query(ge=1, le=HAR_MOST)] = 1000,
) -> Response:
    principal.require(Role.ADMIN, "exporting traces")
    docs = await container.trace_reader.query(
        filters.query(principal.tenant_id, limit=limit, cursor=None)
    )
    # Oldest first, as a browser recorded them.
    body = orjson.dumps(har_log(reversed(docs), version=__version__))
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="casedesk-traces.har"'},
    )


@router.get(
    "/stream",
    summary="New traces as they happen, as Server-Sent Events (admins)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    principal: PrincipalDep,
    container: ContainerDep,
    filters: Annotated[_Filters, Depends()],
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    principal.require(Role.ADMIN, "following traces")
    if not await container.hot.ping():
        raise ServiceUnavailable("the live tail needs the hot trace store, which is unreachable")
    query = filters.query(principal.tenant_id, limit=1, cursor=None)
    tail = container.hot.tail(principal.tenant_id, after=last_event_id)
    return StreamingResponse(
        _events(request, tail, query),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request, tail: AsyncGenerator[tuple[str, Document], None], query: TraceQuery
) -> AsyncIterator[bytes]:
    yield b": following traces\n\n"
    try:
        async for found in matching(tail, query, request.is_disconnected, HEARTBEAT_SECONDS):
            if found is None:
                yield b": still here\n\n"
                continue
            position, doc = found
            summary = TraceSummary.model_validate(doc).model_dump_json()
            yield f"id: {position}\nevent: trace\ndata: {summary}\n\n".encode()
    except HotStoreUnavailable:
        yield b"event: error\ndata: the hot trace store went away; reconnect to resume\n\n"


class BufferStatus(BaseModel):
    capacity: int
    held: int
    dropped: int
    """Records this process dropped because its buffer was full, since it started."""


class TraceStoreStatus(BaseModel):
    buffer: BufferStatus
    hot_tier: str
    hot_tier_reachable: bool
    queue: str


@router.get(
    "/status",
    response_model=TraceStoreStatus,
    summary="How this process's trace recording stands: buffer, dropped records, tiers (admins)",
)
async def status(principal: PrincipalDep, container: ContainerDep) -> TraceStoreStatus:
    principal.require(Role.ADMIN, "reading the trace store's status")
    buffer = container.traces
    return TraceStoreStatus(
        buffer=BufferStatus(capacity=buffer.capacity, held=len(buffer), dropped=buffer.dropped),
        hot_tier="redis" if container.settings.redis_url else "memory",
        hot_tier_reachable=await container.hot.ping(),
        queue="rabbitmq" if container.settings.broker_url else "in-process",
    )


@router.get("/{record_id}", summary="One call attempt with its headers and bodies (admins)")
async def read(record_id: uuid.UUID, principal: PrincipalDep, container: ContainerDep) -> Document:
    principal.require(Role.ADMIN, "reading traces")
    found = await container.trace_reader.get(principal.tenant_id, record_id)
    if found is None:
        raise NotFound(f"trace record {record_id} not found")
    return found
