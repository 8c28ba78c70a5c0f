"""A connector client applies its connection's auth on the wire, and no trace keeps it."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from casedesk.config import load_settings
from casedesk.integrations.hub import Hub
from casedesk.integrations.manifests import parse_manifest
from casedesk.integrations.runtime import Account, ConnectorClient
from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.documents import document
from tests.support.http_server import LocalHTTPServer, local_http_server

TENANT = uuid.UUID("0190f5c4-0000-7000-8000-0000000000aa")
SECRET = "s3cr3t-value-0123456789"


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[LocalHTTPServer]:
    async with local_http_server() as running:
        yield running


@pytest.fixture
async def traced() -> AsyncIterator[tuple[Hub, TraceBuffer]]:
    buffer = TraceBuffer(100)
    async with Hub(load_settings(outbound_allowed_networks="127.0.0.0/8"), recorder=buffer) as hub:
        yield hub, buffer


def _client(
    hub: Hub, server: LocalHTTPServer, auth: dict[str, Any], **settings: str
) -> ConnectorClient:
    secret_field = auth.get(
        "secret_field", {"basic": "password", "bearer": "token"}.get(auth["type"], "api_key")
    )
    manifest = parse_manifest(
        {
            "id": "svc",
            "name": "Service",
            "base_url": "{{ connection.base_url }}",
            "auth": auth,
            "connection": {"secrets": [{"name": secret_field}]},
        }
    )
    account = Account(
        TENANT, uuid.uuid4(), {"base_url": server.url, **settings}, {secret_field: SECRET}
    )
    return ConnectorClient(hub, manifest, account)


async def _call(client: ConnectorClient, server: LocalHTTPServer) -> Any:
    server.reset()
    template = (
        parse_manifest(
            {
                "id": "t",
                "name": "t",
                "actions": {"a": {"request": {"path": "/items", "query": {"page": "1"}}}},
            }
        )
        .actions["a"]
        .request
    )
    response = await client.send(template, action="list")
    assert response.status_code == 200
    (received,) = server.requests_to("/items")
    return received


def _no_secret_in_traces(buffer: TraceBuffer) -> None:
    records = buffer.drain(100)
    assert records
    for record in records:
        assert SECRET not in orjson.dumps(document(record)).decode()
        assert (
            base64.b64encode(f"ann:{SECRET}".encode()).decode()
            not in orjson.dumps(document(record)).decode()
        )


async def test_an_api_key_in_a_header(
    traced: tuple[Hub, TraceBuffer], server: LocalHTTPServer
) -> None:
    hub, buffer = traced
    client = _client(
        hub, server, {"type": "api_key", "in": "header", "name": "X-Api-Key", "prefix": "Key "}
    )
    received = await _call(client, server)
    assert received.headers["x-api-key"] == f"Key {SECRET}"
    _no_secret_in_traces(buffer)


async def test_an_api_key_in_the_query_under_any_name(
    traced: tuple[Hub, TraceBuffer], server: LocalHTTPServer
) -> None:
    hub, buffer = traced
    client = _client(hub, server, {"type": "api_key", "in": "query", "name": "k"})
    received = await _call(client, server)
    assert dict(parse_qsl(received.query)) == {"page": "1", "k": SECRET}
    _no_secret_in_traces(buffer)


async def test_a_bearer_token(traced: tuple[Hub, TraceBuffer], server: LocalHTTPServer) -> None:
    hub, buffer = traced
    received = await _call(_client(hub, server, {"type": "bearer"}), server)
    assert received.headers["authorization"] == f"Bearer {SECRET}"
    _no_secret_in_traces(buffer)


async def test_basic_auth_with_the_user_from_the_settings(
    traced: tuple[Hub, TraceBuffer], server: LocalHTTPServer
) -> None:
    hub, buffer = traced
    client = _client(hub, server, {"type": "basic"}, username="ann")
    received = await _call(client, server)
    expected = base64.b64encode(f"ann:{SECRET}".encode()).decode()
    assert received.headers["authorization"] == f"Basic {expected}"
    _no_secret_in_traces(buffer)


async def test_every_call_is_traced_with_its_connection(
    traced: tuple[Hub, TraceBuffer], server: LocalHTTPServer
) -> None:
    hub, buffer = traced
    client = _client(hub, server, {"type": "bearer"})
    await _call(client, server)
    (record,) = buffer.drain(10)
    assert record.connection_id == client.account.connection_id
    assert (record.connector, record.action) == ("svc", "list")
