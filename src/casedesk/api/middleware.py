"""One pure-ASGI middleware for what every request needs: a request id bound to every log
line and echoed in ``X-Request-ID``, a body-size limit, metrics and an access log line."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casedesk.api.problems import problem
from casedesk.kit.logging import get_logger
from casedesk.kit.metrics import HTTP_DURATION, HTTP_REQUESTS
from casedesk.kit.tracing import current_trace, new_trace, parse_traceparent

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
log = get_logger("casedesk.access")


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the request body is larger than {limit} bytes")


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """A route whose bodies may be larger (or must be smaller) than the server's limit."""

    method: str
    path: re.Pattern[str]
    max_bytes: int


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, body_limits: Sequence[BodyLimit] = ()
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_limits = tuple(body_limits)

    def _limit_of(self, scope: Scope) -> int:
        method, path = scope.get("method", ""), scope.get("path", "")
        for limit in self.body_limits:
            if limit.method == method and limit.path.match(path):
                return limit.max_bytes
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        trace = (parse_traceparent(headers.get("traceparent")) or new_trace()).child()
        current_trace.set(trace)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id, trace_id=trace.trace_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = MutableHeaders(scope=message)
                response_headers.append(REQUEST_ID_HEADER, request_id)
                response_headers.append("traceparent", trace.traceparent)
            await send(message)

        received = 0
        max_body_bytes = self._limit_of(scope)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body_bytes:
                    raise _too_large(max_body_bytes)
            return message

        try:
            rejection = self._reject_by_headers(headers, max_body_bytes)
            if rejection is not None:
                await rejection(scope, receive, send_with_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _reject_by_headers(self, headers: Headers, max_body_bytes: int) -> Response | None:
        declared = headers.get("content-length")
        if declared is None:
            return None
        if not (declared.isascii() and declared.isdigit()):
            return problem(400, detail="Content-Length is not a number")
        size = int(declared)
        if size > max_body_bytes:
            return problem(
                413,
                detail=f"the request body has {size} bytes; at most {max_body_bytes}"
                " are accepted here",
                limit=max_body_bytes,
                # as text beyond what a JSON number holds exactly
                size=size if size < 2**53 else declared,
            )
        return None

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        HTTP_REQUESTS.labels(method, template, str(status)).inc()
        HTTP_DURATION.labels(method, template).observe(seconds)
        if scope.get("path") in _QUIET_PATHS and status < 400:
            return
        log.info(
            "request",
            method=method,
            path=scope.get("path"),
            route=template,
            status=status,
            duration_ms=round(seconds * 1000, 2),
        )
