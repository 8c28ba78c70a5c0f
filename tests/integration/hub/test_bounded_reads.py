"""Responses are read up to a byte cap, and a trace keeps only the first part of a body,
redacted, against a real server on 127.0.0.1."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import orjson
import pytest

from casedesk.integrations.errors import ResponseTooLarge
from casedesk.integrations.hub import Connection
from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.har import har_entry
from tests.integration.hub.conftest import LOOPBACK, TENANT, OpenHub
from tests.support.http_server import LocalHTTPServer, Reply

Connect = Callable[..., Connection]
SECRET = "QQ-secret-QQ"


def big_json(items: int) -> bytes:
    """A JSON document with a secret near its start and another at its end."""
    rows = [{"id": n, "name": f"row {n}"} for n in range(items)]
    return orjson.dumps({"access_token": SECRET, "rows": rows, "client_secret": SECRET})


async def test_a_declared_length_over_the_cap_fails_before_the_body_is_read(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    server.script("/export", Reply(body=b"x" * 50_000, headers={"content-type": "text/csv"}))
    connection = connect(max_response_bytes=10_000)

    with pytest.raises(ResponseTooLarge) as raised:
        await connection.request("GET", "/export")

    error = raised.value
    assert (error.status, error.limit, error.declared) == (502, 10_000, 50_000)
    assert "declared a body of 50000 bytes" in error.detail
    assert "CASEDESK_OUTBOUND_MAX_RESPONSE_BYTES" in error.detail
    assert error.received == 0
    assert len(server.requests_to("/export")) == 1  # never retried: it would be as large again
    (record,) = traces.drain(10)
    assert record.status == 200
    assert dict(record.response_headers)["content-length"] == "50000"
    assert record.error is not None
    assert record.error.type == "ResponseTooLarge"
    assert "10000 bytes" in record.error.message
    assert record.response_body is not None
    assert (record.response_body.size, record.response_body.text) == (50_000, "")
    assert record.response_body.truncated


async def test_a_chunked_body_over_the_cap_fails_and_the_trace_keeps_its_first_part(
    open_hub: OpenHub, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    hub = open_hub(
        allowed_networks=LOOPBACK, outbound_max_response_bytes=20_000, trace_body_limit_bytes=1024
    )
    # Streamed in pieces, so the server sends no Content-Length: the hub has to count.
    server.script("/feed", Reply(body=b"line\n" * 20_000, chunks=50, body_delay=0.001))
    connection = hub.connection(tenant_id=TENANT, connector="test", base_url=server.url)

    with pytest.raises(ResponseTooLarge) as raised:
        await connection.request("GET", "/feed")

    assert raised.value.declared is None
    assert "sent more than 20000 bytes" in raised.value.detail
    assert 20_000 < raised.value.received < 100_000
    (record,) = traces.drain(10)
    assert record.status == 200
    assert "content-length" not in dict(record.response_headers)
    assert dict(record.response_headers)["transfer-encoding"] == "chunked"
    body = record.response_body
    assert body is not None
    assert body.text == ("line\n" * 205)[:1024]
    assert body.truncated
    assert body.size == raised.value.received


async def test_the_settings_give_the_default_cap(
    open_hub: OpenHub, server: LocalHTTPServer
) -> None:
    hub = open_hub(allowed_networks=LOOPBACK, outbound_max_response_bytes=4096)
    server.script("/small", Reply(body=b"y" * 4096))
    server.script("/large", Reply(body=b"y" * 4097))
    connection = hub.connection(tenant_id=TENANT, connector="test", base_url=server.url)

    assert len((await connection.request("GET", "/small")).content) == 4096
    with pytest.raises(ResponseTooLarge, match="over the limit of 4096 bytes"):
        await connection.request("GET", "/large")


async def test_a_compressed_body_is_capped_by_its_decoded_size(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    packed = gzip.compress(b"z" * 1_000_000)
    assert len(packed) < 10_000
    server.script(
        "/bomb",
        Reply(body=packed, headers={"content-type": "text/plain", "content-encoding": "gzip"}),
    )

    with pytest.raises(ResponseTooLarge, match="sent more than 100000 bytes"):
        await connect(max_response_bytes=100_000).request("GET", "/bomb")


async def test_a_response_within_the_cap_is_whole_for_the_caller_and_cut_in_the_trace(
    open_hub: OpenHub, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    hub = open_hub(allowed_networks=LOOPBACK, trace_body_limit_bytes=2048)
    document = big_json(5_000)
    server.script("/rows", Reply(body=document, headers={"content-type": "application/json"}))
    connection = hub.connection(tenant_id=TENANT, connector="test", base_url=server.url)

    response = await connection.request("GET", "/rows")

    assert response.content == document
    assert response.json()["access_token"] == SECRET
    (record,) = traces.drain(10)
    body = record.response_body
    assert body is not None
    assert (body.size, body.truncated) == (len(document), True)
    assert body.text is not None
    assert body.text.startswith('{"access_token":"[REDACTED]","rows":[{"id":0,')
    assert len(body.text.encode()) <= 2048
    assert "QQ" not in repr(record)


async def test_a_huge_json_over_the_cap_keeps_its_first_part_redacted(
    open_hub: OpenHub, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    hub = open_hub(
        allowed_networks=LOOPBACK, outbound_max_response_bytes=50_000, trace_body_limit_bytes=4096
    )
    server.script(
        "/dump",
        Reply(
            body=big_json(20_000),
            headers={"content-type": "application/json"},
            chunks=40,
            body_delay=0.001,
        ),
    )
    connection = hub.connection(tenant_id=TENANT, connector="test", base_url=server.url)

    with pytest.raises(ResponseTooLarge):
        await connection.request("GET", "/dump")

    (record,) = traces.drain(10)
    assert "QQ" not in repr(record)
    body = record.response_body
    assert body is not None
    assert body.text is not None
    assert body.text.startswith('{"access_token":"[REDACTED]","rows":[')
    # The record exports as a HAR entry that says why the call failed, secret still out.
    entry = har_entry(record)
    assert entry["response"]["status"] == 200
    assert "over the limit of 50000 bytes" in entry["response"]["_error"]
    assert "QQ" not in orjson.dumps(entry).decode()


async def test_a_secret_cut_by_the_trace_limit_is_redacted(
    open_hub: OpenHub, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    hub = open_hub(allowed_networks=LOOPBACK, trace_body_limit_bytes=40)
    body = b'{"id": 7, "refresh_token": "' + b"Q" * 500 + b'"}'
    server.script("/token", Reply(body=body, headers={"content-type": "application/json"}))
    connection = hub.connection(tenant_id=TENANT, connector="test", base_url=server.url)

    await connection.request("POST", "/token")

    (record,) = traces.drain(10)
    captured = record.response_body
    assert captured is not None
    assert captured.text == '{"id": 7, "refresh_token": "[REDACTED]"'
    assert captured.truncated


def test_a_connection_cannot_have_a_cap_below_one_byte(connect: Connect) -> None:
    with pytest.raises(ValueError, match="positive"):
        connect(max_response_bytes=-1)
