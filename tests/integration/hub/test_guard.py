"""The outbound-address guard: internal destinations are refused where the socket is opened."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator, Sequence
from ipaddress import ip_address
from pathlib import Path

import httpx
import pytest

from casedesk.integrations.errors import (
    OutboundAddressRefused,
    UnsupportedOutboundURL,
    UpstreamUnreachable,
)
from casedesk.integrations.guard import IPAddress, SystemResolver
from casedesk.integrations.hub import Hub, Timeouts
from casedesk.integrations.retry import RetryPolicy
from casedesk.traces.buffer import TraceBuffer
from tests.integration.hub.conftest import TENANT, OpenHub
from tests.support.http_server import LocalHTTPServer, local_http_server

ONCE = RetryPolicy(max_attempts=1)
# Without the guard, calls to unroutable addresses would end here instead.
QUICK = Timeouts(total=2, connect=0.5)


class StaticResolver:
    """Names the test decides, in order: each lookup of a name takes the next answer."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self._answers = answers
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        self.lookups.append(host)
        answers = self._answers[host]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [ip_address(address) for address in addresses]


async def call(hub: Hub, url: str, retry: RetryPolicy = ONCE) -> httpx.Response:
    connection = hub.connection(tenant_id=TENANT, connector="test", retry=retry, timeout=QUICK)
    return await connection.request("GET", url)


@pytest.mark.parametrize(
    ("host", "address", "kind"),
    [
        ("127.0.0.1", "127.0.0.1", "loopback"),
        ("localhost", "127.0.0.1", "loopback"),
        ("[::1]", "::1", "loopback"),
        ("0.0.0.0", "0.0.0.0", "unspecified"),  # on Linux, this very host
        ("10.0.0.1", "10.0.0.1", "private"),
        ("169.254.169.254", "169.254.169.254", "link-local"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "loopback"),
    ],
)
async def test_internal_addresses_are_refused_by_default(
    open_hub: OpenHub,
    server: LocalHTTPServer,
    traces: TraceBuffer,
    host: str,
    address: str,
    kind: str,
) -> None:
    hub = open_hub(allowed_networks="")

    with pytest.raises(OutboundAddressRefused) as raised:
        await call(hub, f"http://{host}:{server.port}/metadata", retry=RetryPolicy())

    refusal = raised.value
    assert refusal.status == 422
    assert refusal.address == str(ip_address(address))
    assert f"{kind} addresses are not reachable" in refusal.detail
    assert "CASEDESK_OUTBOUND_ALLOWED_NETWORKS" in refusal.detail
    assert server.received == []
    (record,) = traces.drain(10)  # refused once, not retried
    assert record.error is not None
    assert record.error.type == "OutboundAddressRefused"


async def test_a_refusal_names_the_host_and_the_address_it_resolved_to(
    open_hub: OpenHub, server: LocalHTTPServer
) -> None:
    hub = open_hub(allowed_networks="")

    with pytest.raises(OutboundAddressRefused) as raised:
        await call(hub, f"http://localhost:{server.port}/")

    assert raised.value.detail.startswith("refused to connect to localhost (")


async def test_loopback_is_reachable_when_allowed(
    open_hub: OpenHub, server: LocalHTTPServer
) -> None:
    hub = open_hub(allowed_networks="127.0.0.0/8")

    response = await call(hub, f"{server.url}/allowed")

    assert response.status_code == 200
    assert len(server.requests_to("/allowed")) == 1


async def test_the_allow_list_allows_only_what_it_names(open_hub: OpenHub) -> None:
    hub = open_hub(allowed_networks="127.0.0.0/8")

    for url in ("http://10.0.0.1/", "http://[::1]/", "http://169.254.169.254/"):
        with pytest.raises(OutboundAddressRefused):
            await call(hub, url)


async def test_a_name_is_judged_by_the_addresses_it_resolves_to(
    open_hub: OpenHub, server: LocalHTTPServer
) -> None:
    resolver = StaticResolver({"api.partner.test": [["127.0.0.1"]]})
    hub = open_hub(allowed_networks="", resolver=resolver)

    with pytest.raises(OutboundAddressRefused) as raised:
        await call(hub, f"http://api.partner.test:{server.port}/")

    assert raised.value.host == "api.partner.test"
    assert raised.value.address == "127.0.0.1"
    assert server.received == []


async def test_one_internal_address_among_public_ones_is_enough_to_refuse(
    open_hub: OpenHub,
) -> None:
    resolver = StaticResolver({"mixed.test": [["93.184.215.14", "10.1.2.3"]]})
    hub = open_hub(allowed_networks="", resolver=resolver)

    with pytest.raises(OutboundAddressRefused) as raised:
        await call(hub, "http://mixed.test/")

    assert raised.value.address == "10.1.2.3"


async def test_the_connection_goes_to_the_address_that_was_checked(
    open_hub: OpenHub, server: LocalHTTPServer
) -> None:
    # A second lookup would answer an address outside the allow-list (DNS rebinding);
    # the name is looked up once, by the guard, and the socket opened to that answer.
    resolver = StaticResolver({"rebind.test": [["127.0.0.1"], ["10.255.255.1"]]})
    hub = open_hub(allowed_networks="127.0.0.0/8", resolver=resolver)

    response = await call(hub, f"http://rebind.test:{server.port}/pinned")

    assert response.status_code == 200
    assert resolver.lookups == ["rebind.test"]
    (received,) = server.requests_to("/pinned")
    assert received.headers["host"] == f"rebind.test:{server.port}"


async def test_each_resolved_address_is_tried_in_turn(
    open_hub: OpenHub, server: LocalHTTPServer
) -> None:
    # The test server listens on 127.0.0.1 only, so ::1 refuses the connection.
    resolver = StaticResolver({"dual-stack.test": [["::1", "127.0.0.1"]]})
    hub = open_hub(allowed_networks="127.0.0.0/8,::1/128", resolver=resolver)

    response = await call(hub, f"http://dual-stack.test:{server.port}/either")

    assert response.status_code == 200


async def test_a_name_that_does_not_resolve_fails_as_unreachable(open_hub: OpenHub) -> None:
    hub = open_hub(allowed_networks="")

    with pytest.raises(UpstreamUnreachable, match=r"cannot resolve no-such-host\.invalid"):
        await call(hub, "http://no-such-host.invalid/")


@pytest.mark.parametrize(
    "url",
    ["ftp://files.example.com/a", "file:///etc/passwd", "gopher://x/", "javascript:alert(1)"],
)
async def test_only_http_and_https_are_called(hub: Hub, traces: TraceBuffer, url: str) -> None:
    with pytest.raises(UnsupportedOutboundURL) as raised:
        await call(hub, url)

    assert raised.value.status == 422
    assert "only http:// and https:// URLs can be called" in raised.value.detail
    assert len(traces) == 0


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("/no/base?token=t", "a relative URL needs a connection with a base URL"),
        ("http:///path-only", "the URL names no host"),
        ("http://api.example.com:port/", "not a valid URL"),
    ],
)
async def test_a_url_the_hub_cannot_call_is_refused_without_repeating_it(
    hub: Hub, url: str, complaint: str
) -> None:
    with pytest.raises(UnsupportedOutboundURL) as raised:
        await call(hub, url)

    assert complaint in raised.value.detail
    assert "token=t" not in raised.value.detail


def test_a_connection_with_a_non_http_base_url_is_refused(hub: Hub) -> None:
    with pytest.raises(UnsupportedOutboundURL):
        hub.connection(tenant_id=TENANT, connector="test", base_url="file:///var/run/")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the name ``localhost`` only."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
async def tls_server(certificate: tuple[Path, Path]) -> AsyncIterator[LocalHTTPServer]:
    cert, key = certificate
    async with local_http_server(certfile=cert, keyfile=key) as server:
        yield server


async def test_tls_verifies_the_host_name_not_the_address_connected_to(
    open_hub: OpenHub, tls_server: LocalHTTPServer, certificate: tuple[Path, Path]
) -> None:
    resolver = StaticResolver({"localhost": [["127.0.0.1"]], "other-name.test": [["127.0.0.1"]]})
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    hub = open_hub(allowed_networks="127.0.0.0/8", resolver=resolver, ssl_context=trusting)

    response = await call(hub, f"https://localhost:{tls_server.port}/secure")
    assert response.status_code == 200

    with pytest.raises(UpstreamUnreachable) as raised:
        await call(hub, f"https://other-name.test:{tls_server.port}/secure")
    assert "certificate verify failed" in str(raised.value.__cause__)
    assert len(tls_server.requests_to("/secure")) == 1


async def test_the_system_resolver_returns_each_address_once() -> None:
    addresses = await SystemResolver().resolve("127.0.0.1", 80)

    assert addresses == [ip_address("127.0.0.1")]
