"""Turning one attempt of an HTTP exchange into a trace record: redacted, capped, hashed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import httpx
import orjson

from casedesk.kit.ids import uuid7
from casedesk.kit.tracing import TraceContext
from casedesk.traces.records import (
    CallFailure,
    CallOrigin,
    CapturedBody,
    HeaderPairs,
    TraceRecord,
)
from casedesk.traces.redaction import Redactor

_FORM = "application/x-www-form-urlencoded"
_TEXTUAL = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/graphql",
        "application/x-ndjson",
        "application/yaml",
        _FORM,
    }
)


@dataclass(frozen=True, slots=True)
class ExchangeCapture:
    """How one connection's attempts become trace records."""

    redactor: Redactor
    body_limit: int

    def record(
        self,
        *,
        origin: CallOrigin,
        span: TraceContext,
        parent_span_id: str | None,
        attempt: int,
        request: httpx.Request,
        response: httpx.Response | None,
        started_at: datetime,
        duration_ms: float,
        ttfb_ms: float | None,
        error: BaseException | None,
    ) -> TraceRecord:
        """The record of an attempt; ``response`` is None when it ended in ``error``."""
        redactor = self.redactor
        status, response_headers, response_body = self._response_side(response)
        return TraceRecord(
            id=uuid7(),
            trace_id=span.trace_id,
            span_id=span.span_id,
            parent_span_id=parent_span_id,
            tenant_id=origin.tenant_id,
            execution_id=origin.execution_id,
            connection_id=origin.connection_id,
            connector=origin.connector,
            action=origin.action,
            attempt=attempt,
            method=request.method,
            url=redactor.url(request.url),
            request_headers=redactor.headers(request.headers.multi_items()),
            request_body=self.body(request.content, request.headers.get("content-type")),
            status=status,
            response_headers=response_headers,
            response_body=response_body,
            started_at=started_at,
            duration_ms=duration_ms,
            ttfb_ms=ttfb_ms,
            error=None if error is None else _failure(error),
        )

    def body(self, content: bytes, content_type: str | None) -> CapturedBody | None:
        """A body as kept: redacted text up to the limit, or the hash of a binary payload."""
        if not content:
            return None
        media_type, charset = _parse_content_type(content_type)
        text = _decode(content, media_type, charset)
        if text is None:
            return CapturedBody(
                size=len(content),
                content_type=content_type,
                text=None,
                truncated=False,
                sha256=hashlib.sha256(content).hexdigest(),
            )
        kept = self._redacted(text, media_type).encode()
        return CapturedBody(
            size=len(content),
            content_type=content_type,
            # A cut through a multi-byte character drops that character, not the record.
            text=kept[: self.body_limit].decode(errors="ignore"),
            truncated=len(kept) > self.body_limit,
            sha256=None,
        )

    def _response_side(
        self, response: httpx.Response | None
    ) -> tuple[int | None, HeaderPairs, CapturedBody | None]:
        if response is None:
            return None, (), None
        headers = self.redactor.headers(response.headers.multi_items())
        body = self.body(response.content, response.headers.get("content-type"))
        return response.status_code, headers, body

    def _redacted(self, text: str, media_type: str) -> str:
        if media_type == _FORM:
            return self.redactor.form(text)
        if _is_json(media_type) or (not media_type and text.lstrip()[:1] in ("{", "[")):
            return self._redacted_json(text)
        return text

    def _redacted_json(self, text: str) -> str:
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text  # not JSON after all: kept as the service sent it
        redacted = self.redactor.json(document)
        return text if redacted is document else orjson.dumps(redacted).decode()


def _failure(error: BaseException) -> CallFailure:
    return CallFailure(type=type(error).__name__, message=str(error))


def _parse_content_type(content_type: str | None) -> tuple[str, str | None]:
    """The media type (lower-case, '' when absent) and the charset parameter, if any."""
    media_type, *parameters = (content_type or "").split(";")
    charset = None
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return media_type.strip().lower(), charset


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _is_textual(media_type: str) -> bool:
    return (
        media_type.startswith("text/")
        or media_type.endswith(("+json", "+xml"))
        or media_type in _TEXTUAL
    )


def _decode(content: bytes, media_type: str, charset: str | None) -> str | None:
    """The body as text, or None when it is binary (by its type, or because it won't decode)."""
    if media_type and not _is_textual(media_type):
        return None
    try:
        text = content.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        return None
    return None if "\x00" in text else text
