"""Retries against a real server: which failures are retried, and how long the hub waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime

import pytest

from casedesk.integrations.errors import UpstreamTimeout, UpstreamUnreachable
from casedesk.integrations.hub import Connection, Timeouts
from casedesk.integrations.retry import RetryPolicy
from casedesk.kit.clock import utcnow
from casedesk.traces.buffer import TraceBuffer
from tests.support.http_server import LocalHTTPServer, Reply

Connect = Callable[..., Connection]


def gap(server: LocalHTTPServer, path: str) -> float:
    first, second = server.requests_to(path)[:2]
    return second.at - first.at


async def test_503_with_retry_after_seconds_waits_that_long(
    connect: Connect, server: LocalHTTPServer
) -> None:
    server.script("/busy", Reply(503, headers={"retry-after": "1"}), Reply.json({"ok": True}))

    response = await connect().request("GET", "/busy")

    assert response.status_code == 200
    assert len(server.requests_to("/busy")) == 2
    assert gap(server, "/busy") >= 1.0


async def test_429_with_an_http_date_retry_after_waits_until_then(
    connect: Connect, server: LocalHTTPServer
) -> None:
    until = format_datetime(utcnow() + timedelta(seconds=2), usegmt=True)
    server.script("/limited", Reply(429, headers={"retry-after": until}), Reply())

    response = await connect().request("GET", "/limited")

    assert response.status_code == 200
    # The date has whole seconds, so the wait is between one and two seconds.
    assert gap(server, "/limited") >= 0.9


async def test_retry_after_is_capped_by_the_max_delay(
    connect: Connect, server: LocalHTTPServer
) -> None:
    server.script("/later", Reply(503, headers={"retry-after": "3600"}), Reply())
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.2)

    async with asyncio.timeout(5):
        response = await connect(retry=policy).request("GET", "/later")

    assert response.status_code == 200
    assert 0.2 <= gap(server, "/later") < 1.0


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_get_is_retried_on_a_transient_status(
    connect: Connect, server: LocalHTTPServer, status: int
) -> None:
    server.script("/transient", Reply(status), Reply())

    response = await connect().request("GET", "/transient")

    assert response.status_code == 200
    assert len(server.requests_to("/transient")) == 2


@pytest.mark.parametrize("status", [400, 404, 500])
async def test_other_statuses_are_returned_at_once(
    connect: Connect, server: LocalHTTPServer, status: int
) -> None:
    server.script("/final", Reply(status), Reply())

    response = await connect().request("GET", "/final")

    assert response.status_code == status
    assert len(server.requests_to("/final")) == 1


async def test_after_the_last_attempt_the_last_response_is_returned(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    server.script("/down", Reply(503, b"still down"))

    response = await connect().request("GET", "/down")

    assert response.status_code == 503
    assert response.text == "still down"
    assert len(server.requests_to("/down")) == 3
    assert [record.attempt for record in traces.drain(10)] == [1, 2, 3]


@pytest.mark.parametrize("status", [500, 503])
async def test_post_is_not_retried_on_a_server_error(
    connect: Connect, server: LocalHTTPServer, status: int
) -> None:
    server.script("/orders", Reply(status), Reply(201))

    response = await connect().request("POST", "/orders", json={"sku": "A-1"})

    assert response.status_code == status
    assert len(server.requests_to("/orders")) == 1


async def test_post_is_retried_when_the_policy_allows_unsafe_retries(
    connect: Connect, server: LocalHTTPServer
) -> None:
    server.script("/hooks", Reply(503), Reply(204, b""))
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, retry_unsafe=True)

    response = await connect(retry=policy).request("POST", "/hooks", json={"event": "x"})

    assert response.status_code == 204
    bodies = [received.body for received in server.requests_to("/hooks")]
    assert bodies == [b'{"event":"x"}', b'{"event":"x"}']


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_connect_errors_are_retried_for_any_method(
    connect: Connect, traces: TraceBuffer, closed_port: int, method: str
) -> None:
    connection = connect(base_url=f"http://127.0.0.1:{closed_port}")

    with pytest.raises(UpstreamUnreachable) as raised:
        await connection.request(method, "/")

    assert raised.value.status == 502
    assert "after 3 attempt(s)" in raised.value.detail
    records = traces.drain(10)
    assert [record.attempt for record in records] == [1, 2, 3]
    assert {record.error.type for record in records if record.error} == {"ConnectError"}


async def test_a_read_timeout_is_retried_for_get(connect: Connect, server: LocalHTTPServer) -> None:
    server.script("/slow", Reply(delay=1.0))
    connection = connect(timeout=Timeouts(total=5, read=0.2))

    started = time.perf_counter()
    with pytest.raises(UpstreamTimeout) as raised:
        await connection.request("GET", "/slow")

    assert raised.value.status == 504
    assert len(server.requests_to("/slow")) == 3
    assert time.perf_counter() - started < 3


async def test_a_read_timeout_is_not_retried_for_post(
    connect: Connect, server: LocalHTTPServer
) -> None:
    server.script("/slow-post", Reply(delay=1.0))
    connection = connect(timeout=Timeouts(total=5, read=0.2))

    with pytest.raises(UpstreamTimeout):
        await connection.request("POST", "/slow-post", content=b"once")

    assert len(server.requests_to("/slow-post")) == 1


async def test_the_total_timeout_bounds_a_body_that_trickles_in(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    # Each piece arrives well within the read timeout; the whole takes too long.
    server.script("/trickle", Reply(body=b"x" * 10, chunks=10, body_delay=0.1))
    connection = connect(timeout=Timeouts(total=0.4, read=5), retry=RetryPolicy(max_attempts=1))

    with pytest.raises(UpstreamTimeout) as raised:
        await connection.request("GET", "/trickle")

    assert "no complete response within 0.4 s" in raised.value.detail
    (record,) = traces.drain(10)
    assert record.error is not None
    assert record.error.type == "TimeoutException"
    assert 400 <= record.duration_ms < 900
