"""The admins' action-trace viewer: every third-party call of the tenant, newest first, with
the filters and cursor of ``GET /api/v1/traces``; one call with its headers and bodies and
every redacted value marked; a waterfall of one execution's calls; the HAR download and the
live tail of new calls.

Everything is read through the trace store's own reader (``TraceReader``, ``TraceQuery``) and
exported by ``traces.har``, exactly as the API does. The case page asks ``case_calls`` which
of its messages came in by an execution, and where the calls of a reply's delivery are.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, get_args
from urllib.parse import urlencode, urlsplit

import orjson
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy import select

from casedesk import __version__
from casedesk.domain.cases.views import CommentView
from casedesk.kit.cursors import CursorCodec
from casedesk.kit.errors import InvalidInput
from casedesk.kit.values import Instant
from casedesk.store.models import ExecutionStep
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.traces.documents import Document
from casedesk.traces.following import matching
from casedesk.traces.har import har_log
from casedesk.traces.hot import HotStoreUnavailable
from casedesk.traces.query import StatusClass, TraceQuery
from casedesk.traces.redaction import REDACTED, REDACTED_ENCODED
from casedesk.web import i18n
from casedesk.web.admin import _admin
from casedesk.web.pages import Viewer, environment, render
from casedesk.web.session import BadForm, container_of, person, plain_text_only, tenant_work

router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
PersonDep = Annotated[Viewer, Depends(person)]

PAGE_SIZE = 50
WATERFALL_MOST = 200
"""Calls drawn in one execution's waterfall; an execution making more is cut, and says so."""
HAR_MOST = 1000
"""Records in one HAR download, as the API's default."""
ATTEMPTS_WINDOW = timedelta(minutes=15)
"""How far from one attempt its siblings are looked for: the hub's retries of one call
(at most a few attempts, each waiting at most half a minute) end well within it."""
HEARTBEAT_SECONDS = 15.0
SCALE = 100
"""The waterfall's columns: a bar starts and ends on a hundredth of the execution's span."""
STATUSES: tuple[str, ...] = get_args(StatusClass)
WEBHOOK_DELIVERIES = "webhooks"
"""The connector name of casedesk's own webhook deliveries (``worker.webhooks``)."""

CURSORS: CursorCodec[tuple[datetime, uuid.UUID]] = CursorCodec("traces", tuple[Instant, uuid.UUID])
"""The API's cursor of the trace list (same kind and key), so a page of one continues in the
other: the (started_at, id) of the last record shown, newest first."""

_MARKED = re.compile(
    "|".join(re.escape(m) for m in (json.dumps(REDACTED), REDACTED, REDACTED_ENCODED))
)
"""A redacted value as a record holds it: quoted in JSON, bare in a header, encoded in a URL
or a form body."""


# --- what the pages show --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filters:
    """The list's filters, as its GET form and its links carry them."""

    execution: str | None = None
    connection: uuid.UUID | None = None
    status: StatusClass | None = None
    since: datetime | None = None
    until: datetime | None = None
    url: str | None = None

    def query(self, tenant_id: uuid.UUID, *, limit: int, cursor: str | None = None) -> TraceQuery:
        return TraceQuery(
            tenant_id=tenant_id,
            execution_id=self.execution,
            connection_id=self.connection,
            status_class=self.status,
            since=self.since,
            until=self.until,
            url_contains=self.url,
            before=None if cursor is None else CURSORS.decode(cursor),
            limit=limit,
        )

    def params(self, **more: str) -> str:
        """The filters as a query string (times in UTC), with ``more`` added."""
        pairs = {
            "execution": self.execution,
            "connection": None if self.connection is None else str(self.connection),
            "status": self.status,
            "from": None if self.since is None else _iso(self.since),
            "to": None if self.until is None else _iso(self.until),
            "url": self.url,
        } | more
        return urlencode({name: value for name, value in pairs.items() if value})


@dataclass(frozen=True, slots=True)
class Call:
    """One attempt as a row of the list: what the row and the waterfall show."""

    id: str
    started_at: datetime
    method: str
    host: str
    path: str
    status: int | None
    outcome: str
    duration_ms: float
    connection_id: str | None
    connector: str
    action: str | None
    execution_id: str | None
    attempt: int
    error: str | None

    @property
    def from_execution(self) -> bool:
        """Whether ``execution_id`` names a workflow execution (a webhook delivery records its
        delivery's id there instead)."""
        return self.connector != WEBHOOK_DELIVERIES

    @classmethod
    def of(cls, doc: Document) -> Call:
        parts = urlsplit(doc["url"])
        error = doc.get("error")
        status = doc["status"]
        return cls(
            id=doc["id"],
            started_at=datetime.fromisoformat(doc["started_at"]),
            method=doc["method"],
            host=parts.netloc,
            path=parts.path or "/",
            status=status,
            outcome="error" if status is None else f"{status // 100}xx",
            duration_ms=float(doc["duration_ms"]),
            connection_id=doc["connection_id"],
            connector=doc["connector"],
            action=doc["action"],
            execution_id=doc["execution_id"],
            attempt=int(doc["attempt"]),
            error=None if error is None else f"{error['type']}: {error['message']}",
        )


@dataclass(frozen=True, slots=True)
class Bar:
    """One call of a waterfall: where its bar starts and how wide it is, in ``SCALE`` columns."""

    call: Call
    offset_ms: float
    before: int
    width: int
    after: int


def waterfall(calls: Sequence[Call]) -> list[Bar]:
    """The bars of calls (oldest first), each positioned by its start from the first call's
    and as wide as it took, on a scale of the whole span; every bar is at least a column."""
    if not calls:
        return []
    first = min(call.started_at for call in calls)
    offsets = [(call.started_at - first) / timedelta(milliseconds=1) for call in calls]
    span = max(offset + call.duration_ms for offset, call in zip(offsets, calls, strict=True))
    bars = []
    for offset, call in zip(offsets, calls, strict=True):
        before = min(SCALE - 1, int(offset / span * SCALE)) if span > 0 else 0
        width = max(1, min(SCALE - before, round(call.duration_ms / span * SCALE) if span else 1))
        bars.append(Bar(call, offset, before, width, SCALE - before - width))
    return bars


def pieces(text: str) -> list[tuple[str, bool]]:
    """The text cut around its redacted values: (text, False) pieces as they are and
    (marker, True) for each value the trace redacted, which a page shows as a badge."""
    found: list[tuple[str, bool]] = []
    at = 0
    for match in _MARKED.finditer(text):
        if match.start() > at:
            found.append((text[at : match.start()], False))
        found.append((match.group(), True))
        at = match.end()
    if at < len(text) or not found:
        found.append((text[at:], False))
    return found


def shown_body(body: dict[str, Any] | None) -> str | None:
    """A body's text as shown: JSON indented (redacted values stay as the record has them),
    anything else as kept."""
    if body is None or body.get("text") is None:
        return None
    text: str = body["text"]
    media = (body.get("content_type") or "").split(";")[0].strip().lower()
    looks_json = media == "application/json" or media.endswith("+json")
    if looks_json or (not media and text.lstrip()[:1] in ("{", "[")):
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return text  # cut at the trace limit, or not JSON after all
    return text


# --- reading the form ------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _moment(name: str, value: str, viewer: Viewer) -> datetime:
    """A time of the form: with its zone when it names one, else in the viewer's zone."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadForm(f"{name}: not a date and time (2026-01-31T09:30)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=i18n.zone(viewer.time_zone))
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise BadForm(f"{name}: out of range") from None


def _local(moment: datetime | None, viewer: Viewer) -> str:
    """A time as a ``datetime-local`` field shows it, in the viewer's zone."""
    if moment is None:
        return ""
    return moment.astimezone(i18n.zone(viewer.time_zone)).strftime("%Y-%m-%dT%H:%M:%S")


def _filters(request: Request, viewer: Viewer) -> Filters:
    """The filters of the query string; a bad one is a 422 naming it, before any read."""
    params = request.query_params

    def text(name: str, most: int) -> str | None:
        value = (params.get(name) or "").strip()
        if len(value) > most:
            raise BadForm(f"{name}: at most {most} characters")
        return value or None

    connection = text("connection", 64)
    try:
        connection_id = None if connection is None else uuid.UUID(connection)
    except ValueError:
        raise BadForm("connection: not a connection's id") from None
    status = text("status", 8)
    if status is not None and status not in STATUSES:
        raise BadForm(f"status: one of {', '.join(STATUSES)}")
    since, until = text("from", 64), text("to", 64)
    return Filters(
        execution=text("execution", 64),
        connection=connection_id,
        status=status,  # type: ignore[arg-type]  # one of StatusClass, checked above
        since=None if since is None else _moment("from", since, viewer),
        until=None if until is None else _moment("to", until, viewer),
        url=text("url", 500),
    )


def _cursor(request: Request) -> str | None:
    cursor = (request.query_params.get("cursor") or "").strip() or None
    if cursor is not None:
        try:
            CURSORS.decode(cursor)
        except InvalidInput:
            raise BadForm("cursor: not one this list returned") from None
    return cursor


def _tenant(viewer: Viewer) -> uuid.UUID:
    assert viewer.principal is not None
    return viewer.principal.tenant_id


async def _connections(request: Request, viewer: Viewer) -> dict[str, str]:
    """The tenant's connections' names by id, for the filter and the rows."""
    names: dict[str, str] = {}
    cursor = None
    async with tenant_work(request, viewer) as uow:
        while True:
            page = await uow.connections.list_page(limit=200, cursor=cursor)
            names.update({str(c.id): f"{c.name} ({c.connector})" for c in page.items})
            if page.next_cursor is None:
                return names
            cursor = page.next_cursor


# --- the pages ---------------------------------------------------------------------------


@router.get("/app/admin/traces", response_class=HTMLResponse)
async def traces(request: Request, viewer: PersonDep) -> Response:
    """The tenant's calls, newest first, a page at a time; filtered by an execution, with the
    waterfall of all its calls above the list."""
    _admin(viewer)
    filters, cursor = _filters(request, viewer), _cursor(request)
    reader = container_of(request).trace_reader
    tenant_id = _tenant(viewer)
    docs = await reader.query(filters.query(tenant_id, limit=PAGE_SIZE + 1, cursor=cursor))
    page, more = docs[:PAGE_SIZE], len(docs) > PAGE_SIZE
    bars: list[Bar] = []
    cut = False
    if filters.execution is not None:
        ran = await reader.query(
            TraceQuery(
                tenant_id=tenant_id, execution_id=filters.execution, limit=WATERFALL_MOST + 1
            )
        )
        cut = len(ran) > WATERFALL_MOST
        bars = waterfall([Call.of(doc) for doc in reversed(ran[:WATERFALL_MOST])])
    next_cursor = CURSORS.encode(_key(page[-1])) if more else None
    return render(
        request,
        viewer,
        "traces.html",
        section="admin",
        errors=[],
        pieces=pieces,
        calls=[Call.of(doc) for doc in page],
        filters=filters,
        form={"from": _local(filters.since, viewer), "to": _local(filters.until, viewer)},
        statuses=STATUSES,
        connections=await _connections(request, viewer),
        next_page=None if next_cursor is None else filters.params(cursor=next_cursor),
        first_page=filters.params() if cursor is not None else None,
        har=filters.params(),
        live=filters.params(),
        bars=bars,
        waterfall_cut=cut,
        scale=SCALE,
    )


def _key(doc: Document) -> tuple[datetime, uuid.UUID]:
    return datetime.fromisoformat(doc["started_at"]), uuid.UUID(doc["id"])


@router.get("/app/admin/traces.har")
async def traces_har(request: Request, viewer: PersonDep) -> Response:
    """The filtered calls as a HAR 1.2 file, oldest first, as the API exports them."""
    _admin(viewer)
    filters = _filters(request, viewer)
    docs = await container_of(request).trace_reader.query(
        filters.query(_tenant(viewer), limit=HAR_MOST)
    )
    return Response(
        orjson.dumps(har_log(reversed(docs), version=__version__)),
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="casedesk-traces.har"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/app/admin/traces/live")
async def traces_live(request: Request, viewer: PersonDep) -> Response:
    """Server-Sent Events for the list's Live switch: each new call that matches the filters
    as the row the list would show (``event: trace``), from the hot tier's tail."""
    _admin(viewer)
    filters = _filters(request, viewer)
    container = container_of(request)
    if not await container.hot.ping():
        return Response("the live tail needs the hot trace store", status_code=503)
    tail = container.hot.tail(_tenant(viewer), after=request.headers.get("last-event-id"))
    return StreamingResponse(
        _rows(request, viewer, tail, filters.query(_tenant(viewer), limit=1)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _rows(
    request: Request,
    viewer: Viewer,
    tail: AsyncGenerator[tuple[str, Document], None],
    query: TraceQuery,
) -> AsyncIterator[bytes]:
    """The tail as events, as the API's stream sends it, each record rendered as a row."""
    yield b"retry: 5000\n: following traces\n\n"
    shown: dict[str, Any] = {
        "when": lambda moment: i18n.when(moment, viewer.language, viewer.time_zone),
        "pieces": pieces,
    }
    macros = environment(viewer.language).get_template("trace_macros.html").make_module(shown)
    connections = await _connections(request, viewer)
    try:
        async for found in matching(tail, query, request.is_disconnected, HEARTBEAT_SECONDS):
            if found is None:
                yield b": still here\n\n"
                continue
            position, doc = found
            html = macros.call_row(Call.of(doc), connections)  # type: ignore[attr-defined]
            data = "".join(f"data: {line}\n" for line in str(html).splitlines())
            yield f"id: {position}\nevent: trace\n{data}\n".encode()
    except HotStoreUnavailable:
        yield b"event: gone\ndata: the hot trace store went away\n\n"


@router.get("/app/admin/traces/{record_id}", response_class=HTMLResponse)
async def trace(
    request: Request, viewer: PersonDep, record_id: Annotated[uuid.UUID, Path()]
) -> Response:
    """One attempt: request and response with headers and bodies, the call's other attempts,
    and where it came from."""
    _admin(viewer)
    reader = container_of(request).trace_reader
    doc = await reader.get(_tenant(viewer), record_id)
    if doc is None:
        return render(request, viewer, "message.html", status=404, message="no such call")
    started = datetime.fromisoformat(doc["started_at"])
    near = await reader.query(
        TraceQuery(
            tenant_id=_tenant(viewer),
            execution_id=doc["execution_id"],
            connection_id=None if doc["connection_id"] is None else uuid.UUID(doc["connection_id"]),
            since=started - ATTEMPTS_WINDOW,
            until=started + ATTEMPTS_WINDOW,
            limit=WATERFALL_MOST,
        )
    )
    return render(
        request,
        viewer,
        "trace.html",
        section="admin",
        errors=[],
        call=Call.of(doc),
        doc=doc,
        attempts=[Call.of(other) for other in attempts_of(doc, near)],
        request_body=shown_body(doc["request"]["body"]),
        response_body=shown_body(doc["response"]["body"]),
        connections=await _connections(request, viewer),
        pieces=pieces,
    )


def attempts_of(doc: Document, near: Iterable[Document]) -> list[Document]:
    """The attempts of the call ``doc`` is one attempt of, first attempt first: the records
    the hub made as sibling spans of one caller's span for the same request."""
    same = [
        other
        for other in near
        if other["trace_id"] == doc["trace_id"]
        and other["parent_span_id"] == doc["parent_span_id"]
        and (other["method"], other["url"], other["action"])
        == (doc["method"], doc["url"], doc["action"])
    ]
    if not any(other["id"] == doc["id"] for other in same):
        same.append(doc)
    ordered = sorted(same, key=lambda other: (other["attempt"], other["started_at"]))
    return ordered if len(ordered) > 1 else []


# --- from the case page -----------------------------------------------------------------------

DESCRIPTION = "description"
"""The key of the case's first message (its description) in ``case_calls``."""
_MADE_BY_STEPS = ("receive_message", "add_comment", "create_case")


def _mailbox_of(reply: Mapping[str, Any] | None) -> uuid.UUID | None:
    """The mailbox a mail came in by (``reply.mailbox_id``), whose id its replies' SMTP
    submissions are traced under."""
    found = (reply or {}).get("mailbox_id")
    return None if found is None else uuid.UUID(str(found))


async def case_calls(
    uow: UnitOfWork, case_id: uuid.UUID, comments: Iterable[CommentView]
) -> dict[str, str]:
    """Links to the calls behind a case's messages, by comment id (``DESCRIPTION`` for the
    message that opened the case).

    A message a channel brought in (or a workflow wrote) was made by an execution step, whose
    output names the case and the comment: its link lists that execution's calls. A reply
    sent out through the channel is delivered without an execution, through the connection
    its thread came in by: its link lists that connection's calls from when it was written
    to when it was sent (the channel message recorded on sending), or since it was written
    while it is pending or failed. A reply by mail from a mailbox has no connection: its
    SMTP submissions are recorded under the mailbox's id, which the link filters by instead.
    """
    links: dict[str, str] = {}
    steps = await uow.session.scalars(
        select(ExecutionStep).where(
            ExecutionStep.kind.in_(_MADE_BY_STEPS),
            ExecutionStep.status == "succeeded",
            ExecutionStep.output["case_id"].as_string() == str(case_id),
        )
    )
    for step in steps:
        output = step.output or {}
        made = output.get("comment_id") if step.kind == "receive_message" else output.get("id")
        if step.kind == "create_case" or (
            step.kind == "receive_message" and output.get("outcome") in ("opened", "followed_up")
        ):
            made = DESCRIPTION
        if isinstance(made, str):
            links.setdefault(made, Filters(execution=str(step.execution_id)).params())
    delivered = [comment for comment in comments if comment.delivery is not None]
    if not delivered:
        return links
    rows = await uow.channel_messages.of_case(case_id)
    sent = {row.comment_id: row for row in rows if row.direction == "out"}
    inbound = [row for row in rows if row.direction == "in"]
    for comment in delivered:
        out = sent.get(comment.id)
        through = out.connection_id if out is not None else None
        if through is None and inbound:
            through = inbound[-1].connection_id or _mailbox_of(inbound[-1].reply)
        if through is None:
            continue
        window = Filters(
            connection=through,
            since=comment.created_at.replace(microsecond=0),
            until=None if out is None else out.created_at + timedelta(seconds=1),
        )
        links[str(comment.id)] = window.params()
    return links
