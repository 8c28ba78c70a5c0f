"""Turning one attempt of an HTTP exchange into a trace record: capped, redacted, hashed.

It happens in two steps. On the call path, ``ExchangeCapture.attempt`` only takes what the
record needs (the raw headers, the bodies, the timings) into a ``CapturedAttempt``: no
decoding, no redaction, no serialisation. The buffer's ``drain`` (in the flusher, off the
call path) ``finish``es each one into a ``TraceRecord``, and only records leave the process,
so nothing unredacted reaches the hot tier, the queue or SQL.

A body is cut at the trace limit first, and only the part kept is decoded and redacted, so
the work per record is bounded whatever a service sends. A JSON or form body that was cut
(or does not parse) is redacted by a tolerant scan of the text kept, so a secret-named field
in it never reaches a record. A captured attempt holds a body longer than the limit only as
its finished (redacted, cut, hashed) form, so what waits in the buffer stays as small as
what records keep.
"""

from __future__ import annotations

import codecs
import hashlib
import uuid
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


RawHeaders = tuple[tuple[bytes, bytes], ...]
"""Header (name, value) pairs as httpx holds them, names lower-case, not yet decoded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _RawBody:
    """A body of at most the trace limit, as sent or received; finished off the call path."""

    content: bytes
    content_type: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CapturedAttempt:
    """What the call path takes of an attempt; ``finish`` makes it a redacted record.

    It holds secrets (the headers and bodies as sent), so it never leaves the process: only
    the record ``finish`` returns is written anywhere.
    """

    id: uuid.UUID
    capture: ExchangeCapture
    origin: CallOrigin
    span: TraceContext
    parent_span_id: str | None
    attempt: int
    method: str
    url: httpx.URL
    request_headers: RawHeaders
    request_encoding: str
    request_body: _RawBody | CapturedBody | None
    status: int | None
    response_headers: RawHeaders
    response_encoding: str
    response_body: _RawBody | CapturedBody | None
    started_at: datetime
    duration_ms: float
    ttfb_ms: float | None
    error: CallFailure | None

    def finish(self) -> TraceRecord:
        """The attempt's trace record: URL, headers and bodies decoded, cut and redacted."""
        capture = self.capture
        redactor = capture.redactor
        return TraceRecord(
            id=self.id,
            trace_id=self.span.trace_id,
            span_id=self.span.span_id,
            parent_span_id=self.parent_span_id,
            tenant_id=self.origin.tenant_id,
            execution_id=self.origin.execution_id,
            connection_id=self.origin.connection_id,
            connector=self.origin.connector,
            action=self.origin.action,
            attempt=self.attempt,
            method=self.method,
            url=redactor.url(self.url),
            request_headers=redactor.headers(_decoded(self.request_headers, self.request_encoding)),
            request_body=capture.finish_body(self.request_body),
            status=self.status,
            response_headers=redactor.headers(
                _decoded(self.response_headers, self.response_encoding)
            ),
            response_body=capture.finish_body(self.response_body),
            started_at=self.started_at,
            duration_ms=self.duration_ms,
            ttfb_ms=self.ttfb_ms,
            error=self.error,
        )


def _decoded(headers: RawHeaders, encoding: str) -> list[tuple[str, str]]:
    return [(name.decode(encoding), value.decode(encoding)) for name, value in headers]


def _raw_headers(headers: httpx.Headers) -> RawHeaders:
    # ``multi_items`` without the decoding: names lower-case, as records keep them.
    return tuple((name.lower(), value) for name, value in headers.raw)


@dataclass(frozen=True, slots=True)
class ExchangeCapture:
    """How one connection's attempts become trace records."""

    redactor: Redactor
    body_limit: int

    def attempt(
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
    ) -> CapturedAttempt:
        """What the call path keeps of an attempt; ``response`` is None when it ended in
        ``error``. Cheap: the redaction waits for ``CapturedAttempt.finish``.

        ``response_body`` is what was read of the response's body (default: all of it,
        ``response.content``) and ``response_size`` its full size, when only a part was read.
        """
        status: int | None = None
        response_headers: RawHeaders = ()
        response_encoding = "ascii"
        body: _RawBody | CapturedBody | None = None
        if response is not None:
            status = response.status_code
            response_headers = _raw_headers(response.headers)
            response_encoding = response.headers.encoding
            content = response.content if response_body is None else response_body
            body = self._take(content, response.headers.get("content-type"), response_size)
        return CapturedAttempt(
            id=uuid7(),
            capture=self,
            origin=origin,
            span=span,
            parent_span_id=parent_span_id,
            attempt=attempt,
            method=request.method,
            url=request.url,
            # Copied now: the hub sets the next attempt's traceparent on the same request.
            request_headers=_raw_headers(request.headers),
            request_encoding=request.headers.encoding,
            request_body=self._take(request.content, request.headers.get("content-type")),
            status=status,
            response_headers=response_headers,
            response_encoding=response_encoding,
            response_body=body,
            started_at=started_at,
            duration_ms=duration_ms,
            ttfb_ms=ttfb_ms,
            error=None if error is None else _failure(error),
        )

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
        """The finished record of an attempt at once (``attempt`` then ``finish``)."""
        return self.attempt(
            origin=origin,
            span=span,
            parent_span_id=parent_span_id,
            attempt=attempt,
            request=request,
            response=response,
            started_at=started_at,
            response_body=response_body,
            response_size=response_size,
            duration_ms=duration_ms,
            ttfb_ms=ttfb_ms,
            error=error,
        ).finish()

    def _take(
        self, content: bytes, content_type: str | None, size: int | None = None
    ) -> _RawBody | CapturedBody | None:
        """A body as the call path keeps it: as it is when it is whole and within the
        limit, else finished now, so that no long body waits in the buffer."""
        if len(content) <= self.body_limit and (size is None or size == len(content)):
            return _RawBody(content=content, content_type=content_type) if content else None
        return self.body(content, content_type, size)

    def finish_body(self, body: _RawBody | CapturedBody | None) -> CapturedBody | None:
        if isinstance(body, _RawBody):
            return self.body(body.content, body.content_type)
        return body

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
