"""Turning one attempt of an HTTP exchange into a trace record: capped, redacted, hashed.

A body is cut at the trace limit first, and only the part kept is decoded and redacted, so
the work per record is bounded whatever a service sends. A JSON or form body that was cut
(or does not parse) is redacted by a tolerant scan of the text kept, so a secret-named field
in it never reaches a record.
"""

from __future__ import annotations

import codecs
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
        response_body: bytes | None = None,
        response_size: int | None = None,
        duration_ms: float,
        ttfb_ms: float | None,
        error: BaseException | None,
    ) -> TraceRecord:
        """The record of an attempt; ``response`` is None when it ended in ``error``.

        ``response_body`` is what was read of the response's body (default: all of it,
        ``response.content``) and ``response_size`` its full size, when only a part was read.
        """
        redactor = self.redactor
        status, response_headers, captured = self._response_side(
            response, response_body, response_size
        )
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
            response_body=captured,
            started_at=started_at,
            duration_ms=duration_ms,
            ttfb_ms=ttfb_ms,
            error=None if error is None else _failure(error),
        )

    def body(
        self, content: bytes, content_type: str | None, size: int | None = None
    ) -> CapturedBody | None:
        """A body as kept: redacted text up to the limit, or the hash of a binary payload.

        ``content`` may be only the first part of a body of ``size`` bytes.
        """
        size = len(content) if size is None else size
        if not size:
            return None
        media_type, charset = _parse_content_type(content_type)
        kept = content[: self.body_limit]
        cut = size > len(kept)
        text = _decode(kept, media_type, charset, complete=not cut)
        if text is None:
            return CapturedBody(
                size=size,
                content_type=content_type,
                text=None,
                truncated=False,
                # Only a body read whole can be told apart by its hash.
                sha256=hashlib.sha256(content).hexdigest() if len(content) == size else None,
            )
        redacted = self._redacted(text, media_type, complete=not cut).encode()
        return CapturedBody(
            size=size,
            content_type=content_type,
            # Redaction may lengthen the text; the record still keeps at most the limit. A
            # cut through a multi-byte character drops that character, not the record.
            text=redacted[: self.body_limit].decode(errors="ignore"),
            truncated=cut or len(redacted) > self.body_limit,
            sha256=None,
        )

    def _response_side(
        self, response: httpx.Response | None, content: bytes | None, size: int | None
    ) -> tuple[int | None, HeaderPairs, CapturedBody | None]:
        if response is None:
            return None, (), None
        headers = self.redactor.headers(response.headers.multi_items())
        content = response.content if content is None else content
        body = self.body(content, response.headers.get("content-type"), size)
        return response.status_code, headers, body

    def _redacted(self, text: str, media_type: str, *, complete: bool) -> str:
        if media_type == _FORM:
            return self.redactor.form(text)
        if _is_json(media_type) or (not media_type and text.lstrip()[:1] in ("{", "[")):
            return self._redacted_json(text) if complete else self.redactor.json_text(text)
        return text

    def _redacted_json(self, text: str) -> str:
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            # Not JSON after all: kept as the service sent it, secret-named fields aside.
            return self.redactor.json_text(text)
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


def _decode(content: bytes, media_type: str, charset: str | None, *, complete: bool) -> str | None:
    """The body as text, or None when it is binary (by its type, or because it won't decode).

    A body that was cut may end inside a multi-byte character; that character is left out.
    """
    if media_type and not _is_textual(media_type):
        return None
    try:
        decoder = codecs.getincrementaldecoder(charset or "utf-8")()
        text = decoder.decode(content, final=complete)
    except (UnicodeDecodeError, LookupError):
        return None
    return None if "\x00" in text else text
