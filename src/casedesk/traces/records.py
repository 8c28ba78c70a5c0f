"""What one attempt of a third-party call leaves behind: a trace record.

Records are plain slotted dataclasses holding values that are already redacted and capped;
nothing here parses or validates again. The call path only captures an attempt
(``capture.CapturedAttempt``); the record is made from it off that path.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from casedesk.traces.capture import CapturedAttempt

HeaderPairs = tuple[tuple[str, str], ...]
"""Header (name, value) pairs in the order sent or received; names are lower-case and may repeat."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CapturedBody:
    """A request or response body as kept in a trace.

    Text bodies keep their (redacted) text up to the body limit. Binary bodies keep only
    their SHA-256, so a trace can still tell two payloads apart.
    """

    size: int
    content_type: str | None
    text: str | None
    truncated: bool
    sha256: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFailure:
    """Why an attempt ended without a response."""

    type: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOrigin:
    """Who made a call: the same for every attempt of it."""

    tenant_id: uuid.UUID
    connector: str
    connection_id: uuid.UUID | None
    action: str | None
    execution_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceRecord:
    """One attempt of one call through the hub."""

    id: uuid.UUID
    trace_id: str
    span_id: str
    parent_span_id: str | None
    tenant_id: uuid.UUID
    execution_id: str | None
    connection_id: uuid.UUID | None
    connector: str
    action: str | None
    attempt: int
    method: str
    url: str
    request_headers: HeaderPairs
    request_body: CapturedBody | None
    status: int | None
    response_headers: HeaderPairs
    response_body: CapturedBody | None
    started_at: datetime
    duration_ms: float
    ttfb_ms: float | None
    error: CallFailure | None


class TraceRecorder(Protocol):
    """Where the hub hands what it captured of each attempt; must return at once and never
    fail the call. The record is made (redacted) later, off the call path. A call that is
    not HTTP (an SMTP submission) hands a record made already."""

    def append(self, entry: CapturedAttempt | TraceRecord) -> None: ...
