"""The hub against a real HTTP server on 127.0.0.1, one server for the session.

The server listens on loopback, which the hub refuses by default; ``hub`` allows loopback
explicitly, and tests of the guard open hubs with the allow-list they need.
"""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import pytest

from casedesk.config import load_settings
from casedesk.integrations.guard import Resolver
from casedesk.integrations.hub import Connection, Hub
from casedesk.integrations.retry import RetryPolicy
from casedesk.traces.buffer import TraceBuffer
from tests.support.http_server import LocalHTTPServer, local_http_server

LOOPBACK = "127.0.0.0/8,::1/128"
TENANT = uuid.UUID("0190f5c4-0000-7000-8000-000000000001")
QUICK_RETRIES = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=5.0)


class OpenHub(Protocol):
    def __call__(
        self,
        *,
        allowed_networks: str,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        **settings: Any,
    ) -> Hub: ...


@pytest.fixture(scope="session")
async def shared_server() -> AsyncIterator[LocalHTTPServer]:
    async with local_http_server() as server:
        yield server


@pytest.fixture
def server(shared_server: LocalHTTPServer) -> LocalHTTPServer:
    shared_server.reset()
    return shared_server


@pytest.fixture
def traces() -> TraceBuffer:
    return TraceBuffer(1000)


@pytest.fixture
async def open_hub(traces: TraceBuffer) -> AsyncIterator[OpenHub]:
    hubs: list[Hub] = []

    def open_hub(
        *,
        allowed_networks: str,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        **settings: Any,
    ) -> Hub:
        configured = load_settings(outbound_allowed_networks=allowed_networks, **settings)
        hub = Hub(configured, recorder=traces, resolver=resolver, ssl_context=ssl_context)
        hubs.append(hub)
        return hub

    yield open_hub
    for hub in hubs:
        await hub.aclose()


@pytest.fixture
def hub(open_hub: OpenHub) -> Hub:
    """A hub allowed to call loopback, where the test server listens."""
    return open_hub(allowed_networks=LOOPBACK)


@pytest.fixture
def connect(hub: Hub, server: LocalHTTPServer) -> Callable[..., Connection]:
    """A connection to the test server; keyword arguments as for ``Hub.connection``."""

    def connect(**options: Any) -> Connection:
        options.setdefault("retry", QUICK_RETRIES)
        options.setdefault("base_url", server.url)
        return hub.connection(tenant_id=TENANT, connector="test", **options)

    return connect


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
