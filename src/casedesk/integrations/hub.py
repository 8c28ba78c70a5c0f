"""The hub: every call casedesk makes to a third party goes through here.

One pooled HTTP client serves the process. A ``Connection`` binds it to one tenant's use of
one service: base URL, credentials, timeouts, retry policy, rate limit, the most it reads of
a response and the names to redact. Each attempt takes a slot of the rate limit, is guarded
(internal addresses refused), carries a W3C ``traceparent`` downstream, reads at most
``max_response_bytes`` and leaves one trace record.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from ipaddress import ip_address
from types import TracebackType

import httpx

from casedesk import __version__
from casedesk.config import Settings
from casedesk.integrations.errors import (
    ResponseTooLarge,
    UnsupportedOutboundURL,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from casedesk.integrations.guard import (
    AddressPolicy,
    GuardedNetworkBackend,
    GuardedTransport,
    Resolver,
    SystemResolver,
)
from casedesk.integrations.ratelimit import RateLimit, RateLimits
from casedesk.integrations.retry import RetryPolicy
from casedesk.kit.clock import utcnow
from casedesk.kit.tracing import TraceContext, current_trace, new_trace, parse_traceparent
from casedesk.traces.capture import ExchangeCapture
from casedesk.traces.records import CallOrigin, TraceRecorder
from casedesk.traces.redaction import Redactor

_POOL_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Limits of one attempt, in seconds.

    ``total`` bounds the whole attempt: connecting, sending, and receiving the complete
    response. ``connect`` and ``read`` (the longest wait for any piece of the response)
    default to ``total``.
    """

    total: float
    connect: float | None = None
    read: float | None = None

    def __post_init__(self) -> None:
        for value in (self.total, self.connect, self.read):
            if value is not None and value <= 0:
                raise ValueError(f"timeouts must be positive, not {value}")

    def for_httpx(self) -> httpx.Timeout:
        connect = self.total if self.connect is None else self.connect
        read = self.total if self.read is None else self.read
        return httpx.Timeout(self.total, connect=connect, read=read)


class Hub:
    """Owns the pooled client; hands out connections. Close it (or use ``async with``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        recorder: TraceRecorder | None = None,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = AddressPolicy(settings.outbound_networks)
        backend = GuardedNetworkBackend(self.policy, resolver or SystemResolver())
        transport = GuardedTransport(
            backend, ssl_context or httpx.create_ssl_context(), _POOL_LIMITS
        )
        self._client = httpx.AsyncClient(
            # With a transport given, httpx uses no proxy from the environment either:
            # every connection goes through the guard.
            transport=transport,
            # One client serves every tenant: a cookie one service sets must never ride
            # along on another call. A jar that accepts no domain keeps none.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            headers={"User-Agent": f"casedesk/{__version__}"},
        )
        self._recorder = recorder
        self._body_limit = settings.trace_body_limit_bytes
        self.default_max_response_bytes = settings.outbound_max_response_bytes
        self.rate_limits = RateLimits(settings.redis_url, namespace=settings.broker_namespace)
        self.default_timeout = Timeouts(total=settings.outbound_timeout_seconds)
        self.default_retry = RetryPolicy(max_attempts=settings.outbound_max_attempts)

    def connection(
        self,
        *,
        tenant_id: uuid.UUID,
        connector: str,
        connection_id: uuid.UUID | None = None,
        base_url: str | None = None,
        auth: httpx.Auth | Mapping[str, str] | None = None,
        timeout: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        secret_fields: Iterable[str] = (),
        secret_paths: Iterable[str] = (),
        max_response_bytes: int | None = None,
        rate_limit: str | None = None,
        rate_limit_wait: float | None = None,
    ) -> Connection:
        """A connection for one tenant's use of one service.

        ``auth`` is an httpx auth flow, or headers that carry the credentials (a bearer
        token, an API key); those headers are always redacted from traces, as are fields
        named in ``secret_fields`` and path segments marked ``{secret}`` in ``secret_paths``
        (``/services/*/*/{secret}``: see ``traces.redaction.SecretPath``). A response body
        larger than ``max_response_bytes`` (default ``CASEDESK_OUTBOUND_MAX_RESPONSE_BYTES``)
        fails the call. ``rate_limit`` ("100 per minute", "5/second; 1000/hour") is held
        per connection across every process sharing Redis; a call over it waits for a slot
        up to ``rate_limit_wait`` seconds (default: the attempt's total timeout), else raises
        ``OutboundRateLimited``.
        """
        if max_response_bytes is not None and max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be positive, not {max_response_bytes}")
        if rate_limit_wait is not None and rate_limit_wait < 0:
            raise ValueError(f"rate_limit_wait cannot be negative, not {rate_limit_wait}")
        auth_headers = dict(auth) if isinstance(auth, Mapping) else {}
        timeout = timeout or self.default_timeout
        redactor = Redactor.declaring([*secret_fields, *auth_headers], secret_paths)
        return Connection(
            client=self._client,
            recorder=self._recorder,
            capture=ExchangeCapture(redactor, self._body_limit),
            tenant_id=tenant_id,
            connector=connector,
            connection_id=connection_id,
            base_url=None if base_url is None else _require_http(_parse_url(base_url)),
            auth_flow=auth if isinstance(auth, httpx.Auth) else None,
            auth_headers=auth_headers,
            timeout=timeout,
            retry=retry or self.default_retry,
            max_response_bytes=max_response_bytes or self.default_max_response_bytes,
            rate_limits=self.rate_limits,
            rate_limit=None if rate_limit is None else RateLimit.parse(rate_limit),
            rate_limit_wait=timeout.total if rate_limit_wait is None else rate_limit_wait,
        )

    def check_destination(self, url: str) -> None:
        """Refuse, before anything is saved, a URL the hub could never call: not http(s), or
        an internal address written as an IP or as ``localhost``. Names are resolved only when
        a call is made, so one that resolves inside is refused then."""
        try:
            host = httpx.URL(url).host
        except httpx.InvalidURL:
            raise UnsupportedOutboundURL("not a valid URL") from None
        if not host:
            raise UnsupportedOutboundURL("the URL has no host")
        name = host.lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            self.policy.check(host, ip_address("127.0.0.1"))
            return
        with contextlib.suppress(ValueError):  # a name, not an address
            self.policy.check(host, ip_address(host))

    async def aclose(self) -> None:
        await self._client.aclose()
        await self.rate_limits.aclose()

    async def __aenter__(self) -> Hub:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class Connection:
    """One tenant's configured access to one external service; made by ``Hub.connection``."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        recorder: TraceRecorder | None,
        capture: ExchangeCapture,
        tenant_id: uuid.UUID,
        connector: str,
        connection_id: uuid.UUID | None,
        base_url: httpx.URL | None,
        auth_flow: httpx.Auth | None,
        auth_headers: Mapping[str, str],
        timeout: Timeouts,
        retry: RetryPolicy,
        max_response_bytes: int,
        rate_limits: RateLimits,
        rate_limit: RateLimit | None,
        rate_limit_wait: float,
    ) -> None:
        self._client = client
        self._recorder = recorder
        self._capture = capture
        self._auth_flow = auth_flow
        self._auth_headers = auth_headers
        self.tenant_id = tenant_id
        self.connector = connector
        self.connection_id = connection_id
        self.base_url = base_url
        self.timeout = timeout
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        self._rate_limits = rate_limits
        self.rate_limit = rate_limit
        self.rate_limit_wait = rate_limit_wait

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: object = None,
        content: bytes | str | None = None,
        action: str | None = None,
        execution_id: str | None = None,
        traceparent: str | None = None,
        max_response_bytes: int | None = None,
    ) -> httpx.Response:
        """Send a request, retrying as the policy allows; the response is fully read.

        ``max_response_bytes`` bounds this call's body instead of the connection's (a
        file's download, bounded by the attachment limit): at most that many bytes plus
        one are held before the call fails.

        A response of any status is returned (the last one, when retries ran out). When
        every attempt failed without a response, raises ``UpstreamUnreachable`` (or
        ``UpstreamTimeout``); an internal destination raises ``OutboundAddressRefused``; a
        body over ``max_response_bytes`` raises ``ResponseTooLarge`` (not retried); a spent
        rate limit raises ``OutboundRateLimited``. Every attempt takes a slot of the rate
        limit, before its own time is counted.
        """
        target = self._target(url)
        if params:
            # Merged into the URL's own query (a delta or next-page link keeps its token):
            # httpx would replace that query with ``params``, even with empty ones.
            target = target.copy_merge_params(dict(params))
        request = self._client.build_request(
            method.upper(),
            target,
            headers=self._headers(headers),
            json=json,
            content=content,
            timeout=self.timeout.for_httpx(),
        )
        origin = CallOrigin(
            tenant_id=self.tenant_id,
            connector=self.connector,
            connection_id=self.connection_id,
            action=action,
            execution_id=execution_id,
        )
        parent = parse_traceparent(traceparent) or current_trace.get()
        # Attempts are sibling spans in the caller's trace, or in a new one.
        trace = parent or new_trace()
        attempts = 0
        limit = max_response_bytes or self.max_response_bytes

        async def attempt() -> httpx.Response:
            nonlocal attempts
            await self._take_rate_slot()
            attempts += 1
            current = _Attempt(origin, trace.child(), parent, attempts)
            request.headers["traceparent"] = current.span.traceparent
            return await self._send(request, current, limit)

        try:
            response: httpx.Response = await self.retry.retrying(request.method)(attempt)
        except httpx.TransportError as error:
            raise self._gave_up(request, error, attempts) from error
        return response

    async def _send(self, request: httpx.Request, attempt: _Attempt, limit: int) -> httpx.Response:
        try:
            response, ttfb = await self._exchange(request, limit)
        except ResponseTooLarge as error:
            self._record(
                attempt,
                request,
                response=error.response,
                body=error.prefix,
                body_size=error.declared or error.received,
                ttfb=error.ttfb,
                error=error,
            )
            raise
        except Exception as error:
            self._record(attempt, request, error=error)
            raise
        self._record(attempt, request, response=response, body=response.content, ttfb=ttfb)
        return response

    async def _exchange(self, request: httpx.Request, limit: int) -> tuple[httpx.Response, float]:
        """The fully read response, and the seconds until its headers arrived."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout.total):
                response = await self._client.send(request, auth=self._auth_flow, stream=True)
                ttfb = time.perf_counter() - started
                async with contextlib.aclosing(response):
                    await self._read_bounded(request, response, ttfb, limit)
        except TimeoutError as exc:
            message = f"no complete response within {self.timeout.total:g} s"
            raise httpx.TimeoutException(message, request=request) from exc
        return response, ttfb

    async def _read_bounded(
        self, request: httpx.Request, response: httpx.Response, ttfb: float, limit: int
    ) -> None:
        """Read the body, never holding more than ``limit`` bytes of it, plus one.

        A declared ``Content-Length`` over the limit fails before anything is read; a body
        without one (chunked) is counted as it arrives, decoded, so a compressed answer is
        bounded by what it would take in memory.
        """
        declared = None if request.method == "HEAD" else _content_length(response)
        if declared is not None and declared > limit:
            raise self._too_large(request, response, b"", 0, ttfb, limit, declared=declared)
        received = bytearray()
        async for chunk in response.aiter_bytes():
            received += chunk[: limit + 1 - len(received)]
            if len(received) > limit:
                raise self._too_large(request, response, received, len(received), ttfb, limit)
        # httpx has no public way to hand a streamed body to the response; this is what
        # ``aread()`` itself sets, so ``.content``, ``.text`` and ``.json()`` work as usual.
        response._content = bytes(received)

    def _too_large(
        self,
        request: httpx.Request,
        response: httpx.Response,
        received: bytes | bytearray,
        size: int,
        ttfb: float,
        limit: int,
        *,
        declared: int | None = None,
    ) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"{request.method} {self._capture.redactor.url(request.url)}",
            limit,
            declared=declared,
            response=response,
            prefix=bytes(received[: self._capture.body_limit + 1]),
            received=size,
            ttfb=ttfb,
        )

    async def _take_rate_slot(self) -> None:
        if self.rate_limit is None:
            return
        if self.connection_id is not None:
            key, name = str(self.connection_id), f"connection {self.connection_id}"
        else:
            key = f"{self.tenant_id}:{self.connector}"
            name = f"the {self.connector} connection of tenant {self.tenant_id}"
        await self._rate_limits.acquire(
            self.rate_limit, key, connection=name, wait=self.rate_limit_wait
        )

    def _record(
        self,
        attempt: _Attempt,
        request: httpx.Request,
        *,
        response: httpx.Response | None = None,
        body: bytes = b"",
        body_size: int | None = None,
        ttfb: float | None = None,
        error: Exception | None = None,
    ) -> None:
        duration = attempt.elapsed()
        if self._recorder is None:
            return
        captured = self._capture.attempt(
            origin=attempt.origin,
            span=attempt.span,
            parent_span_id=None if attempt.parent is None else attempt.parent.span_id,
            attempt=attempt.number,
            request=request,
            response=response,
            response_body=body,
            response_size=body_size,
            started_at=attempt.started_at,
            duration_ms=duration * 1000,
            ttfb_ms=None if ttfb is None else ttfb * 1000,
            error=error,
        )
        self._recorder.append(captured)

    def _target(self, url: str) -> httpx.URL:
        target = _parse_url(url)
        if self.base_url is not None and target.is_relative_url:
            # As httpx does with a base URL: the path is appended to the base path.
            base_path = self.base_url.raw_path.rstrip(b"/") + b"/"
            target = self.base_url.copy_with(raw_path=base_path + target.raw_path.lstrip(b"/"))
        return _require_http(target)

    def _headers(self, headers: Mapping[str, str] | None) -> httpx.Headers:
        merged = httpx.Headers(self._auth_headers)
        merged.update(headers or {})
        return merged

    def _gave_up(
        self, request: httpx.Request, error: httpx.TransportError, attempts: int
    ) -> UpstreamUnreachable:
        url = self._capture.redactor.url(request.url)
        detail = (
            f"{request.method} {url} failed after {attempts} attempt(s): "
            f"{type(error).__name__}: {error}"
        )
        if isinstance(error, httpx.TimeoutException):
            return UpstreamTimeout(detail, attempts=attempts)
        return UpstreamUnreachable(detail, attempts=attempts)


class _Attempt:
    """One try of a call: its number, its own span, when it began."""

    def __init__(
        self, origin: CallOrigin, span: TraceContext, parent: TraceContext | None, number: int
    ) -> None:
        self.origin = origin
        self.span = span
        self.parent = parent
        self.number = number
        self.started_at = utcnow()
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._started


def _content_length(response: httpx.Response) -> int | None:
    """The declared body size, or None when absent or unusable (then the body is counted)."""
    value = response.headers.get("content-length", "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _parse_url(url: str) -> httpx.URL:
    try:
        return httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnsupportedOutboundURL(f"not a valid URL: {exc}") from exc


def _require_http(url: httpx.URL) -> httpx.URL:
    """``url`` itself, if the hub can call it; the message never repeats the URL, which
    may hold a secret."""
    if not url.scheme:
        raise UnsupportedOutboundURL("a relative URL needs a connection with a base URL")
    if url.scheme not in ("http", "https"):
        raise UnsupportedOutboundURL(
            f"only http:// and https:// URLs can be called, not {url.scheme}: URLs"
        )
    if not url.host:
        raise UnsupportedOutboundURL("the URL names no host")
    return url
