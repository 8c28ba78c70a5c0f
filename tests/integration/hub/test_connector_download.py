"""A connector client's file download (``ConnectorClient.download``): relative paths join the
base URL, redirects are followed with the connection's credentials kept to the base URL's host
(and the hosts under its domain), and the answer is read to the cap plus one byte at most."""

from __future__ import annotations

import uuid

import pytest

from casedesk.integrations.errors import ResponseTooLarge
from casedesk.integrations.hub import Hub
from casedesk.integrations.manifests import parse_manifest
from casedesk.integrations.runtime import Account, ConnectorClient
from tests.support.http_server import LocalHTTPServer, Reply

TENANT = uuid.UUID("0190f5c4-0000-7000-8000-0000000000ab")
TOKEN = "xoxb-download-token"


def _client(hub: Hub, base_url: str) -> ConnectorClient:
    manifest = parse_manifest(
        {
            "id": "svc",
            "name": "Service",
            "base_url": "{{ connection.base_url }}",
            "auth": {"type": "bearer", "secret_field": "token"},
            "connection": {"secrets": [{"name": "token"}]},
        }
    )
    account = Account(TENANT, uuid.uuid4(), {"base_url": base_url}, {"token": TOKEN})
    return ConnectorClient(hub, manifest, account)


async def test_a_path_joins_the_base_url_and_redirects_on_the_host_keep_the_token(
    hub: Hub, server: LocalHTTPServer
) -> None:
    server.reset()
    server.script("/api/files/F1", Reply(302, b"", {"location": "/cdn/F1?sig=abc"}))
    server.script("/cdn/F1", Reply(200, b"the bytes", {"content-type": "application/pdf"}))
    answer = await _client(hub, f"{server.url}/api").download(
        "/files/F1", max_bytes=100, action="download_file"
    )
    assert (answer.status_code, answer.content) == (200, b"the bytes")
    first, second = server.received
    assert (first.path, second.path, second.query) == ("/api/files/F1", "/cdn/F1", "sig=abc")
    assert first.headers["authorization"] == second.headers["authorization"] == f"Bearer {TOKEN}"


async def test_a_redirect_to_another_host_goes_there_without_the_token(
    hub: Hub, server: LocalHTTPServer
) -> None:
    server.reset()
    elsewhere = f"http://localhost:{server.port}/cdn/F2"
    server.script("/api/files/F2", Reply(302, b"", {"location": elsewhere}))
    server.script("/cdn/F2", Reply(200, b"x", {"content-type": "text/plain"}))
    answer = await _client(hub, f"{server.url}/api").download(
        f"{server.url}/api/files/F2", max_bytes=100, action="download_file"
    )
    assert answer.status_code == 200
    first, second = server.received
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in second.headers


async def test_an_absolute_url_on_another_host_never_gets_the_token(
    hub: Hub, server: LocalHTTPServer
) -> None:
    server.reset()
    server.script("/files/F3", Reply(200, b"x", {"content-type": "text/plain"}))
    await _client(hub, f"{server.url}/api").download(
        f"http://localhost:{server.port}/files/F3", max_bytes=100, action="download_file"
    )
    (received,) = server.received
    assert "authorization" not in received.headers


async def test_a_file_over_the_cap_is_not_read_beyond_it(hub: Hub, server: LocalHTTPServer) -> None:
    server.reset()
    server.script(
        "/api/big",
        Reply(200, b"y" * 50_000, {"content-type": "text/plain"}, chunks=20, body_delay=0.001),
    )
    with pytest.raises(ResponseTooLarge) as raised:
        await _client(hub, f"{server.url}/api").download(
            "/big", max_bytes=1000, action="download_file"
        )
    assert raised.value.limit == 1000
    assert raised.value.received == 1001
