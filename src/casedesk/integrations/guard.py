"""The outbound-address guard: the hub connects only to addresses it has checked.

The check sits where connections are made (an httpcore network backend): the host is
resolved here, every address it resolves to is checked, and the socket is opened to a
checked address. A name pointing at an internal address is refused like the address itself,
and a name that resolves differently a second time (DNS rebinding) cannot slip through,
because there is no second resolution. TLS still verifies the certificate against the
host name: httpcore starts TLS with the URL's host, not with the address connected to.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Protocol

import httpcore
import httpx

from casedesk.integrations.errors import OutboundAddressRefused

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        """Every address ``host`` stands for; raises ``httpcore.ConnectError`` when none."""
        ...


class SystemResolver:
    """The operating system's resolver, through the event loop."""

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        return list(dict.fromkeys(ip_address(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Internal addresses are refused unless they fall in an allowed network."""

    allowed_networks: tuple[IPNetwork, ...] = ()

    def check(self, host: str, address: IPAddress) -> None:
        """Raise ``OutboundAddressRefused`` when the hub must not connect to ``address``."""
        for candidate in _destinations(address):
            kind = _internal_kind(candidate)
            if kind is not None and not self._allows(address, candidate):
                raise OutboundAddressRefused(host, str(address), kind)

    def _allows(self, *addresses: IPAddress) -> bool:
        return any(address in network for network in self.allowed_networks for address in addresses)


def _internal_kind(address: IPAddress) -> str | None:
    """What makes an address internal, or None for a public unicast address."""
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "non-public"
    return None


def _destinations(address: IPAddress) -> list[IPAddress]:
    """Where packets to ``address`` may end up.

    An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is only another spelling of its
    IPv4 address; 6to4 and Teredo addresses also carry an IPv4 address they reach.
    """
    if isinstance(address, IPv4Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    teredo_client = address.teredo[1] if address.teredo else None
    return [address, *(ipv4 for ipv4 in (address.sixtofour, teredo_client) if ipv4)]


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the policy allows."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._network = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - the signature httpcore calls
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        for address in addresses:
            self._policy.check(host, address)
        failures: list[Exception] = []
        # Like a browser, try each address in turn: a host may publish an IPv6 address
        # that is not reachable from here.
        for address in addresses:
            try:
                return await self._network.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failures.append(exc)
        raise failures[-1]

    async def _resolve(self, host: str, port: int, limit: float | None) -> Sequence[IPAddress]:
        try:
            async with asyncio.timeout(limit):
                addresses = await self._resolver.resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took over {limit} s") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        return addresses

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, connecting through a ``GuardedNetworkBackend``."""

    def __init__(
        self, backend: GuardedNetworkBackend, ssl_context: ssl.SSLContext, limits: httpx.Limits
    ) -> None:
        super().__init__(verify=ssl_context, limits=limits)
        # httpx (through 0.28) takes no network backend, so the connection pool it has just
        # built is swapped for the same pool connecting through the guard.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )
