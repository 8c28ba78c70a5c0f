"""Errors of calls through the hub; each carries its HTTP meaning like every product error."""

from __future__ import annotations

from casedesk.kit.errors import CasedeskError

ALLOW_SETTING = "CASEDESK_OUTBOUND_ALLOWED_NETWORKS"


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


def _full_prefix(address: str) -> int:
    return 128 if ":" in address else 32
