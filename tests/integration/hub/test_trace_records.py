"""What a call through the hub leaves in the trace buffer, and what it sends downstream."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

import httpx
import orjson
import pytest

from casedesk.integrations.errors import UpstreamUnreachable
from casedesk.integrations.hub import Connection
from casedesk.integrations.retry import RetryPolicy
from casedesk.kit.tracing import current_trace, new_trace, parse_traceparent
from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.har import har_entry
from casedesk.traces.redaction import REDACTED, REDACTED_ENCODED
from tests.integration.hub.conftest import LOOPBACK, TENANT, OpenHub
from tests.integration.hub.test_guard import StaticResolver
from tests.support.http_server import LocalHTTPServer, Reply

Connect = Callable[..., Connection]
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_the_callers_trace_continues_downstream_as_a_child_span(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    await connect().request("GET", "/traced", traceparent=CALLER)

    (received,) = server.requests_to("/traced")
    sent = parse_traceparent(received.headers["traceparent"])
    assert sent is not None
    assert sent.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert sent.span_id != "00f067aa0ba902b7"
    assert received.headers["user-agent"].startswith("casedesk/")
    (record,) = traces.drain(10)
    assert (record.trace_id, record.span_id) == (sent.trace_id, sent.span_id)
    assert record.parent_span_id == "00f067aa0ba902b7"


async def test_the_current_trace_is_the_parent_when_none_is_given(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    caller = new_trace()
    token = current_trace.set(caller)
    try:
        await connect().request("GET", "/in-context")
    finally:
        current_trace.reset(token)

    (record,) = traces.drain(10)
    assert record.trace_id == caller.trace_id
    assert record.parent_span_id == caller.span_id


async def test_without_a_caller_a_call_starts_its_own_trace(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    await connect().request("GET", "/root", traceparent="not-a-traceparent")

    (received,) = server.requests_to("/root")
    sent = parse_traceparent(received.headers["traceparent"])
    assert sent is not None
    (record,) = traces.drain(10)
    assert record.trace_id == sent.trace_id
    assert record.parent_span_id is None


async def test_each_attempt_leaves_one_record_as_a_sibling_span(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    server.script("/flaky", Reply(503), Reply(502), Reply.json({"done": True}))
    connection_id = uuid.uuid4()
    connection = connect(connection_id=connection_id)

    await connection.request(
        "GET", "/flaky", action="orders.list", execution_id="exec-1", traceparent=CALLER
    )

    records = traces.drain(10)
    assert [record.attempt for record in records] == [1, 2, 3]
    assert [record.status for record in records] == [503, 502, 200]
    assert {record.trace_id for record in records} == {"4bf92f3577b34da6a3ce929d0e0e4736"}
    assert {record.parent_span_id for record in records} == {"00f067aa0ba902b7"}
    sent_spans = [r.headers["traceparent"].split("-")[2] for r in server.requests_to("/flaky")]
    assert [record.span_id for record in records] == sent_spans
    assert len(set(sent_spans)) == 3
    first = records[0]
    assert (first.tenant_id, first.connection_id, first.connector) == (
        TENANT,
        connection_id,
        "test",
    )
    assert (first.action, first.execution_id, first.method) == ("orders.list", "exec-1", "GET")
    assert first.url == f"{server.url}/flaky"
    assert records[0].id < records[1].id < records[2].id


async def test_attempts_without_a_caller_share_one_new_trace(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    server.script("/retried", Reply(503), Reply())

    await connect().request("GET", "/retried")

    first, second = traces.drain(10)
    assert first.trace_id == second.trace_id
    assert first.span_id != second.span_id
    assert first.parent_span_id is None
    assert second.parent_span_id is None


async def test_secrets_are_redacted_from_records_and_sent_as_they_are(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    server.script(
        "/login",
        Reply.json(
            {"refresh_token": "rt-secret", "user": {"name": "Ada", "session": "sess-secret"}},
            headers={"set-cookie": "sid=cookie-secret"},
        ),
    )
    connection = connect(auth={"X-Shop-Pass": "shop-secret"}, secret_fields=["pin"])

    await connection.request(
        "POST",
        "/login",
        headers={"Authorization": "Bearer bearer-secret", "X-Api-Key": "key-secret"},
        params={"access_token": "at-secret", "page": "2"},
        json={"password": "pw-secret", "items": [{"pin": "1234", "sku": "A-1"}]},
    )

    (record,) = traces.drain(10)
    everything = repr(record)
    for secret in ("shop-secret", "bearer-secret", "key-secret", "at-secret", "pw-secret",
                   "1234", "rt-secret", "sess-secret", "cookie-secret"):  # fmt: skip
        assert secret not in everything
    request_headers = dict(record.request_headers)
    assert request_headers["authorization"] == REDACTED
    assert request_headers["x-api-key"] == REDACTED
    assert request_headers["x-shop-pass"] == REDACTED
    assert request_headers["content-type"] == "application/json"
    assert dict(record.response_headers)["set-cookie"] == REDACTED
    assert record.url == f"{server.url}/login?access_token={REDACTED_ENCODED}&page=2"
    assert record.request_body is not None
    assert record.request_body.text == (
        '{"password":"[REDACTED]","items":[{"pin":"[REDACTED]","sku":"A-1"}]}'
    )
    assert record.response_body is not None
    assert record.response_body.text == (
        '{"refresh_token":"[REDACTED]","user":{"name":"Ada","session":"[REDACTED]"}}'
    )
    (received,) = server.requests_to("/login")
    assert received.headers["x-shop-pass"] == "shop-secret"
    assert received.headers["authorization"] == "Bearer bearer-secret"
    assert received.query == "access_token=at-secret&page=2"
    assert b"pw-secret" in received.body


async def test_credentials_added_by_an_auth_flow_are_recorded_redacted(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    connection = connect(auth=httpx.BasicAuth("robot", "flow-secret"))

    await connection.request("GET", "/basic")

    (received,) = server.requests_to("/basic")
    assert received.headers["authorization"].startswith("Basic ")
    (record,) = traces.drain(10)
    assert dict(record.request_headers)["authorization"] == REDACTED


async def test_a_form_body_is_redacted_field_by_field(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    await connect().request(
        "POST",
        "/oauth/token",
        content="grant_type=refresh_token&refresh_token=rt-secret&client_secret=cs-secret",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    (record,) = traces.drain(10)
    assert record.request_body is not None
    assert record.request_body.text == (
        f"grant_type=refresh_token&refresh_token={REDACTED_ENCODED}&client_secret={REDACTED_ENCODED}"
    )


async def test_time_to_first_byte_is_within_the_duration(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    server.script("/report", Reply(body=b"late body", body_delay=0.3))

    response = await connect().request("GET", "/report")

    assert response.content == b"late body"
    (record,) = traces.drain(10)
    assert record.ttfb_ms is not None
    assert record.ttfb_ms < 250
    assert record.duration_ms >= 300
    assert record.ttfb_ms <= record.duration_ms


async def test_a_big_body_is_kept_up_to_the_limit(
    open_hub: OpenHub, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    hub = open_hub(allowed_networks=LOOPBACK, trace_body_limit_bytes=1024)
    server.script("/export", Reply(body=b"line\n" * 1000))
    connection = hub.connection(tenant_id=TENANT, connector="test", base_url=server.url)

    response = await connection.request("GET", "/export")

    assert len(response.content) == 5000  # the caller gets all of it
    (record,) = traces.drain(10)
    body = record.response_body
    assert body is not None
    assert (body.size, body.truncated, len(body.text or "")) == (5000, True, 1024)


async def test_a_binary_body_is_kept_as_its_hash(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    image = bytes(range(256)) * 4
    server.script("/logo.png", Reply(body=image, headers={"content-type": "image/png"}))

    await connect().request("GET", "/logo.png")

    (record,) = traces.drain(10)
    body = record.response_body
    assert body is not None
    assert body.text is None
    assert (body.size, body.content_type) == (1024, "image/png")
    assert body.sha256 == hashlib.sha256(image).hexdigest()


async def test_an_attempt_without_a_response_records_its_error(
    connect: Connect, traces: TraceBuffer, closed_port: int
) -> None:
    connection = connect(
        base_url=f"http://127.0.0.1:{closed_port}", retry=RetryPolicy(max_attempts=1)
    )

    with pytest.raises(UpstreamUnreachable):
        await connection.request("GET", "/", action="ping")

    (record,) = traces.drain(10)
    assert record.status is None
    assert record.response_headers == ()
    assert record.ttfb_ms is None
    assert record.error is not None
    assert record.error.type == "ConnectError"
    assert record.error.message
    assert record.action == "ping"


async def test_declared_secret_path_segments_and_a_key_parameter_stay_out_of_traces_errors_and_har(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer, closed_port: int
) -> None:
    connection = connect(secret_paths=["/hooks/{secret}"])

    await connection.request("POST", "/hooks/QQ-path-QQ/notify", params={"key": "QQ-key-QQ"})

    (received,) = server.requests_to("/hooks/QQ-path-QQ/notify")
    assert received.query == "key=QQ-key-QQ"  # sent as given
    (record,) = traces.drain(10)
    assert record.url == f"{server.url}/hooks/{REDACTED_ENCODED}/notify?key={REDACTED_ENCODED}"
    entry = har_entry(record)
    assert entry["request"]["queryString"] == [{"name": "key", "value": REDACTED}]
    assert "QQ" not in orjson.dumps(entry).decode()

    unreachable = connect(
        base_url=f"http://127.0.0.1:{closed_port}",
        secret_paths=["/hooks/{secret}"],
        retry=RetryPolicy(max_attempts=1),
    )
    with pytest.raises(UpstreamUnreachable) as raised:
        await unreachable.request("GET", "/hooks/QQ-path-QQ", params={"key": "QQ-key-QQ"})
    assert f"/hooks/{REDACTED_ENCODED}?key={REDACTED_ENCODED}" in raised.value.detail
    assert "QQ" not in raised.value.detail
    assert "QQ" not in repr(traces.drain(10))


async def test_a_slack_webhook_url_is_redacted_without_being_declared(
    open_hub: OpenHub, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    resolver = StaticResolver({"hooks.slack.com": [["127.0.0.1"]]})
    hub = open_hub(allowed_networks=LOOPBACK, resolver=resolver)
    connection = hub.connection(tenant_id=TENANT, connector="webhooks")
    url = f"http://hooks.slack.com:{server.port}/services/T0001/B0002/QQ-token-QQ"

    await connection.request("POST", url, json={"text": "hello"})

    assert len(server.requests_to("/services/T0001/B0002/QQ-token-QQ")) == 1
    (record,) = traces.drain(10)
    assert record.url == (
        f"http://hooks.slack.com:{server.port}/services/T0001/B0002/{REDACTED_ENCODED}"
    )
