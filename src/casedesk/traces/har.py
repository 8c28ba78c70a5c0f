"""Trace records as a HAR 1.2 log, so any HAR viewer can open what a connector sent.

One entry per record, so each attempt of a call is an entry of its own. Sizes and phases a
record does not measure are HAR's "unknown", ``-1``; the protocol version, which records do
not keep, is written as ``HTTP/1.1``. An attempt that got no response is written as Chrome
DevTools writes a failed request: status ``0``, an empty ``x-unknown`` content and the reason
in ``response._error``. Which trace, span, connection and attempt an entry belongs to is kept
beside the standard fields, in the entry's ``_casedesk`` object.

Values are exported as the record holds them: redacted values stay ``[REDACTED]``, and a
body cut at the trace limit says so in its ``comment``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from casedesk.traces.documents import Document, record_of
from casedesk.traces.records import CallFailure, CapturedBody, HeaderPairs, TraceRecord

Har = dict[str, Any]

HAR_VERSION = "1.2"
UNKNOWN_HTTP_VERSION = "HTTP/1.1"
UNKNOWN_MIME_TYPE = "x-unknown"

_REASON_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def har_log(documents: Iterable[Document], *, version: str) -> Har:
    """A complete HAR 1.2 object: one entry per trace document, in the order given.

    ``version`` is casedesk's own version, written as the creator's.
    """
    return {
        "log": {
            "version": HAR_VERSION,
            "creator": {"name": "casedesk", "version": version},
            "pages": [],
            "entries": [har_entry(record_of(doc)) for doc in documents],
        }
    }


def har_entry(record: TraceRecord) -> Har:
    """The HAR entry of one attempt."""
    timings = _timings(record)
    return {
        # Records are stamped in UTC already; converting guarantees the zone HAR requires.
        "startedDateTime": record.started_at.astimezone(UTC).isoformat(),
        # HAR defines the total as the sum of the phases, so it is summed, not copied.
        "time": timings["send"] + timings["wait"] + timings["receive"],
        "request": _request(record),
        "response": _no_response(record.error)
        if record.status is None
        else _response(record.status, record.response_headers, record.response_body, record.error),
        "cache": {},
        "timings": timings,
        "_casedesk": _origin(record),
    }


def _request(record: TraceRecord) -> Har:
    request: Har = {
        "method": record.method,
        "url": record.url,
        "httpVersion": UNKNOWN_HTTP_VERSION,
        "cookies": _request_cookies(record.request_headers),
        "headers": _headers(record.request_headers),
        "queryString": _query_string(record.url),
        "headersSize": -1,
        "bodySize": _body_size(record.request_body),
    }
    if record.request_body is not None:
        request["postData"] = _post_data(record.request_body)
    return request


def _response(
    status: int, headers: HeaderPairs, body: CapturedBody | None, error: CallFailure | None
) -> Har:
    return {
        "status": status,
        "statusText": _REASON_PHRASES.get(status, ""),
        "httpVersion": UNKNOWN_HTTP_VERSION,
        "cookies": _response_cookies(headers),
        "headers": _headers(headers),
        "content": _content(body, _header(headers, "content-type")),
        "redirectURL": _header(headers, "location") or "",
        "headersSize": -1,
        "bodySize": _response_body_size(body, headers),
        # Chrome DevTools writes null here for a request that did not fail; a response the
        # hub gave up reading (too large) did fail, after its status and headers came.
        "_error": None if error is None else error.message,
    }


def _no_response(error: CallFailure | None) -> Har:
    """What Chrome DevTools writes for a request that failed before any response."""
    return {
        "status": 0,
        "statusText": "",
        "httpVersion": "",
        "cookies": [],
        "headers": [],
        "content": {"size": 0, "mimeType": UNKNOWN_MIME_TYPE},
        "redirectURL": "",
        "headersSize": -1,
        "bodySize": -1,
        "_error": "" if error is None else error.message,
    }


def _timings(record: TraceRecord) -> Har:
    # The hub measures only the time to the response headers and the total; the phases
    # before the first byte are not told apart, so they all count as waiting.
    duration = record.duration_ms
    wait = duration if record.ttfb_ms is None else min(record.ttfb_ms, duration)
    return {
        "blocked": -1,
        "dns": -1,
        "connect": -1,
        "ssl": -1,
        "send": 0,
        "wait": wait,
        "receive": duration - wait,
    }


def _origin(record: TraceRecord) -> Har:
    return {
        "record_id": str(record.id),
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "parent_span_id": record.parent_span_id,
        "execution_id": record.execution_id,
        "connection_id": None if record.connection_id is None else str(record.connection_id),
        "connector": record.connector,
        "action": record.action,
        "attempt": record.attempt,
        "error": _failure(record.error),
    }


def _failure(error: CallFailure | None) -> Har | None:
    return None if error is None else {"type": error.type, "message": error.message}


def _headers(pairs: HeaderPairs) -> list[Har]:
    return [{"name": name, "value": value} for name, value in pairs]


def _header(pairs: HeaderPairs, name: str) -> str | None:
    """The first value of a header; record header names are lower-case."""
    return next((value for header, value in pairs if header == name), None)


def _query_string(url: str) -> list[Har]:
    query = urlsplit(url).query
    pairs = parse_qsl(query, keep_blank_values=True)
    return [{"name": name, "value": value} for name, value in pairs]


def _request_cookies(headers: HeaderPairs) -> list[Har]:
    # A Cookie header holds several "name=value" pairs; HTTP/2 may also split them over
    # several Cookie headers.
    return [
        _cookie(pair)
        for name, value in headers
        if name == "cookie"
        for pair in value.split(";")
        if pair.strip()
    ]


def _response_cookies(headers: HeaderPairs) -> list[Har]:
    # Each Set-Cookie header sets one cookie; its attributes follow the first ";".
    return [_cookie(value.partition(";")[0]) for name, value in headers if name == "set-cookie"]


def _cookie(pair: str) -> Har:
    # As RFC 6265bis reads a pair without "=": a nameless cookie. That is also what a
    # redacted header leaves, so "[REDACTED]" stays visible as the cookie's value.
    name, has_value, value = pair.strip().partition("=")
    if not has_value:
        return {"name": "", "value": name}
    return {"name": name.strip(), "value": value.strip()}


def _post_data(body: CapturedBody) -> Har:
    post_data: Har = {"mimeType": body.content_type or "", "text": body.text or ""}
    comment = _body_comment(body)
    if comment:
        post_data["comment"] = comment
    return post_data


def _content(body: CapturedBody | None, content_type: str | None) -> Har:
    if body is None:
        return {"size": 0, "mimeType": content_type or UNKNOWN_MIME_TYPE}
    content: Har = {"size": body.size, "mimeType": body.content_type or UNKNOWN_MIME_TYPE}
    if body.text is not None:
        content["text"] = body.text
    comment = _body_comment(body)
    if comment:
        content["comment"] = comment
    return content


def _body_comment(body: CapturedBody) -> str:
    """What a reader must know about a body that is not all there, or '' when it is."""
    if body.text is None:
        return f"binary body of {body.size} bytes not kept; sha256 {body.sha256}"
    if body.truncated:
        kept = len(body.text.encode())
        return f"truncated: the trace kept {kept} bytes of a {body.size}-byte body"
    return ""


def _body_size(body: CapturedBody | None) -> int:
    return 0 if body is None else body.size


def _response_body_size(body: CapturedBody | None, headers: HeaderPairs) -> int:
    # A record keeps the decoded body; once a content coding was applied, the size that
    # crossed the wire is not known.
    encoding = _header(headers, "content-encoding")
    if encoding is not None and encoding.strip().lower() != "identity":
        return -1
    return _body_size(body)
