"""A connection's binding: base URL, credentials, settings; and what one client must not share."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from casedesk.config import load_settings
from casedesk.integrations.errors import UpstreamTimeout
from casedesk.integrations.hub import Connection, Hub, Timeouts
from tests.integration.hub.conftest import LOOPBACK, TENANT, OpenHub
from tests.support.http_server import LocalHTTPServer, Reply

Connect = Callable[..., Connection]


@pytest.mark.parametrize("base_path", ["/api/v2", "/api/v2/"])
@pytest.mark.parametrize("path", ["/orders", "orders"])
async def test_a_path_is_appended_to_the_base_urls_path(
    connect: Connect, server: LocalHTTPServer, base_path: str, path: str
) -> None:
    connection = connect(base_url=f"{server.url}{base_path}")

    await connection.request("GET", path, params={"page": "2"})

    (received,) = server.received
    assert (received.path, received.query) == ("/api/v2/orders", "page=2")


@pytest.mark.parametrize(
    ("params", "query"),
    [({}, "$deltatoken=3&a=1"), ({"page": "2"}, "$deltatoken=3&a=1&page=2")],
)
async def test_a_urls_own_query_is_kept_beside_the_parameters(
    connect: Connect, server: LocalHTTPServer, params: dict[str, str], query: str
) -> None:
    connection = connect(base_url="https://api.example.com/v1")

    await connection.request("GET", f"{server.url}/delta?$deltatoken=3&a=1", params=params)

    (received,) = server.received
    assert received.query.replace("%24", "$") == query


async def test_an_absolute_url_ignores_the_base_url(
    connect: Connect, server: LocalHTTPServer
) -> None:
    connection = connect(base_url="https://api.example.com/v1")

    await connection.request("GET", f"{server.url}/direct")

    assert len(server.requests_to("/direct")) == 1


async def test_a_header_given_with_the_request_replaces_the_credential_header(
    connect: Connect, server: LocalHTTPServer
) -> None:
    connection = connect(auth={"Authorization": "Bearer connection-token"})

    await connection.request("GET", "/a")
    await connection.request("GET", "/b", headers={"authorization": "Bearer one-off"})

    assert server.requests_to("/a")[0].headers["authorization"] == "Bearer connection-token"
    assert server.requests_to("/b")[0].headers["authorization"] == "Bearer one-off"


async def test_cookies_set_by_one_call_are_not_sent_by_the_next(
    connect: Connect, server: LocalHTTPServer
) -> None:
    server.script("/set", Reply(headers={"set-cookie": "sid=tenant-a; Path=/"}))
    first, second = connect(), connect()

    await first.request("GET", "/set")
    await first.request("GET", "/after")
    await second.request("GET", "/after")

    assert [r.headers.get("cookie") for r in server.requests_to("/after")] == [None, None]


async def test_the_settings_give_the_default_attempts_and_timeout(
    open_hub: OpenHub, server: LocalHTTPServer
) -> None:
    hub = open_hub(allowed_networks=LOOPBACK, outbound_max_attempts=2, outbound_timeout_seconds=0.3)
    server.script("/slow", Reply(delay=1.0))
    connection = hub.connection(tenant_id=TENANT, connector="test", base_url=server.url)

    with pytest.raises(UpstreamTimeout, match="after 2 attempt"):
        await connection.request("GET", "/slow")

    assert len(server.requests_to("/slow")) == 2


async def test_a_hub_without_a_recorder_still_calls(server: LocalHTTPServer) -> None:
    async with Hub(load_settings(outbound_allowed_networks=LOOPBACK)) as hub:
        connection = hub.connection(tenant_id=TENANT, connector="test", base_url=server.url)
        response = await connection.request("GET", "/unrecorded")

    assert response.status_code == 200


async def test_leaving_the_hub_closes_its_client(server: LocalHTTPServer) -> None:
    async with Hub(load_settings(outbound_allowed_networks=LOOPBACK)) as hub:
        connection = hub.connection(tenant_id=TENANT, connector="test", base_url=server.url)

    with pytest.raises(RuntimeError, match="closed"):
        await connection.request("GET", "/after-close")


@pytest.mark.parametrize(
    "options", [{"total": 0}, {"total": 5, "connect": -1}, {"total": 5, "read": 0}]
)
def test_timeouts_must_be_positive(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        Timeouts(**options)
