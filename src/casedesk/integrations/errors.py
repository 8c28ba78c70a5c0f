"""Errors of calls through the hub; each carries its HTTP meaning like every product error."""

from __future__ import annotations

import httpx

from casedesk.kit.errors import CasedeskError

ALLOW_SETTING = "CASEDESK_OUTBOUND_ALLOWED_NETWORKS"
MAX_RESPONSE_SETTING = "CASEDESK_OUTBOUND_MAX_RESPONSE_BYTES"


class HubError(CasedeskError):
    """A call to a third party could not be made or did not complete."""

    status = 502
    title = "External service call failed"
    slug = "external-call-failed"


class UnsupportedOutboundURL(HubError):
    status = 422
    title = "Unsupported outbound URL"
    slug = "unsupported-outbound-url"


class OutboundAddressRefused(HubError):
    """The destination is an internal address (private, loopback, link-local, ...)."""

    status = 422
    title = "Outbound address refused"
    slug = "outbound-address-refused"

    def __init__(self, host: str, address: str, kind: str) -> None:
        destination = address if host == address else f"{host} ({address})"
        super().__init__(
            f"refused to connect to {destination}: {kind} addresses are not reachable from "
            f"casedesk; to allow it, add its network to {ALLOW_SETTING} "
            f"(comma-separated CIDRs, e.g. {address}/{_full_prefix(address)})",
            host=host,
            address=address,
        )
        self.host = host
        self.address = address


class UpstreamUnreachable(HubError):
    """Every attempt failed without a response (connection refused, reset, DNS, ...)."""

    status = 502
    title = "External service unreachable"
    slug = "upstream-unreachable"


class UpstreamTimeout(UpstreamUnreachable):
    status = 504
    title = "External service timed out"
    slug = "upstream-timeout"


class ResponseTooLarge(HubError):
    """The service answered with a body larger than the hub reads.

    The attempt's trace record keeps the status, the headers and the first bytes; the
    response itself is not returned, because the caller would get only part of it.
    """

    status = 502
    title = "External service response too large"
    slug = "upstream-response-too-large"

    def __init__(
        self,
        call: str,
        limit: int,
        *,
        declared: int | None,
        response: httpx.Response,
        prefix: bytes,
        received: int,
        ttfb: float,
    ) -> None:
        answered = (
            f"declared a body of {declared} bytes (Content-Length)"
            if declared is not None
            else f"sent more than {limit} bytes"
        )
        super().__init__(
            f"{call} {answered}, over the limit of {limit} bytes; raise "
            f"{MAX_RESPONSE_SETTING} (or the connection's max_response_bytes) if such "
            "answers are expected",
            limit=limit,
        )
        self.limit = limit
        self.declared = declared
        self.response = response
        """The response as far as it came: status and headers; its body was not kept."""
        self.prefix = prefix
        """The first bytes of the body, as many as a trace keeps."""
        self.received = received
        """Bytes of the body read before the call was given up."""
        self.ttfb = ttfb


class OutboundRateLimited(HubError):
    """The connection's own rate limit is spent for longer than the call may wait."""

    status = 429
    title = "Outbound rate limit reached"
    slug = "outbound-rate-limited"

    def __init__(self, connection: str, limit: str, retry_after: float) -> None:
        super().__init__(
            f"{connection} is limited to {limit}; the next call is possible in "
            f"{retry_after:.1f} s, longer than this call may wait",
            limit=limit,
            retry_after=round(retry_after, 3),
        )
        self.retry_after = retry_after


def _full_prefix(address: str) -> int:
    return 128 if ":" in address else 32
