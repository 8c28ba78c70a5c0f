"""A connection's rate limit, against a real server: calls wait for a slot or fail clearly,
and on Redis the limit is one for every hub (every process) that shares it."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from casedesk.integrations.errors import OutboundRateLimited
from casedesk.integrations.hub import Connection, Hub
from casedesk.traces.buffer import TraceBuffer
from tests.integration.hub.conftest import LOOPBACK, TENANT, OpenHub
from tests.support.http_server import LocalHTTPServer, Reply

Connect = Callable[..., Connection]


def arrivals(server: LocalHTTPServer, path: str) -> list[float]:
    """Seconds after the first request to ``path`` that each one arrived."""
    times = [received.at for received in server.requests_to(path)]
    return [at - times[0] for at in times]


def unavailable_count() -> float:
    value = REGISTRY.get_sample_value("casedesk_outbound_rate_limit_unavailable_total")
    return value or 0.0


def on(
    hub: Hub, server: LocalHTTPServer, connection_id: uuid.UUID, **options: object
) -> Connection:
    return hub.connection(
        tenant_id=TENANT,
        connector="test",
        connection_id=connection_id,
        base_url=server.url,
        **options,  # type: ignore[arg-type]
    )


async def test_a_call_over_the_limit_waits_for_a_free_slot(
    connect: Connect, server: LocalHTTPServer
) -> None:
    connection = connect(connection_id=uuid.uuid4(), rate_limit="2 per second")

    for _ in range(3):
        await connection.request("GET", "/paced")

    _, second, third = arrivals(server, "/paced")
    assert second < 0.5
    assert third >= 0.95  # the first call's slot frees one second after it was taken


async def test_a_call_that_would_wait_longer_than_it_may_fails_at_once(
    connect: Connect, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    connection = connect(connection_id=uuid.uuid4(), rate_limit="1 per minute", rate_limit_wait=0.5)
    await connection.request("GET", "/quota")

    started = time.perf_counter()
    with pytest.raises(OutboundRateLimited) as raised:
        await connection.request("GET", "/quota")

    assert time.perf_counter() - started < 0.4
    error = raised.value
    assert error.status == 429
    assert "is limited to 1 per minute" in error.detail
    assert 55 < error.retry_after <= 60
    assert error.extra["limit"] == "1 per minute"
    assert len(server.requests_to("/quota")) == 1
    assert len(traces.drain(10)) == 1  # a call that was never made leaves no record


async def test_each_attempt_of_a_call_takes_a_slot(
    connect: Connect, server: LocalHTTPServer
) -> None:
    server.script("/retried", Reply(503), Reply())
    connection = connect(connection_id=uuid.uuid4(), rate_limit="1/second")

    response = await connection.request("GET", "/retried")

    assert response.status_code == 200
    assert arrivals(server, "/retried")[1] >= 0.95


async def test_connections_have_their_own_counts(connect: Connect, server: LocalHTTPServer) -> None:
    first = connect(connection_id=uuid.uuid4(), rate_limit="1/minute", rate_limit_wait=0)
    second = connect(connection_id=uuid.uuid4(), rate_limit="1/minute", rate_limit_wait=0)

    await first.request("GET", "/own")
    await second.request("GET", "/own")

    with pytest.raises(OutboundRateLimited):
        await first.request("GET", "/own")
    assert len(server.requests_to("/own")) == 2


async def test_two_hubs_on_redis_share_one_limit(
    open_hub: OpenHub, server: LocalHTTPServer, redis_url: str
) -> None:
    one = open_hub(allowed_networks=LOOPBACK, redis_url=redis_url)
    other = open_hub(allowed_networks=LOOPBACK, redis_url=redis_url)
    connection_id = uuid.uuid4()
    limit = {"rate_limit": "3 per minute", "rate_limit_wait": 0}

    await on(one, server, connection_id, **limit).request("GET", "/shared")
    await on(one, server, connection_id, **limit).request("GET", "/shared")
    await on(other, server, connection_id, **limit).request("GET", "/shared")

    for hub in (other, one):
        with pytest.raises(OutboundRateLimited, match="3 per minute"):
            await on(hub, server, connection_id, **limit).request("GET", "/shared")
    assert len(server.requests_to("/shared")) == 3


async def test_a_hub_on_redis_waits_for_the_slot_another_hub_used(
    open_hub: OpenHub, server: LocalHTTPServer, redis_url: str
) -> None:
    one = open_hub(allowed_networks=LOOPBACK, redis_url=redis_url)
    other = open_hub(allowed_networks=LOOPBACK, redis_url=redis_url)
    connection_id = uuid.uuid4()

    await on(one, server, connection_id, rate_limit="1/second").request("GET", "/turns")
    await on(other, server, connection_id, rate_limit="1/second").request("GET", "/turns")

    assert arrivals(server, "/turns")[1] >= 0.95


async def test_an_unreachable_redis_lets_calls_through_and_is_counted(
    open_hub: OpenHub, server: LocalHTTPServer
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    hub = open_hub(allowed_networks=LOOPBACK, redis_url=f"redis://127.0.0.1:{closed_port}/0")
    connection = on(hub, server, uuid.uuid4(), rate_limit="1 per minute", rate_limit_wait=0)
    before = unavailable_count()

    for _ in range(2):
        assert (await connection.request("GET", "/unlimited")).status_code == 200

    assert len(server.requests_to("/unlimited")) == 2
    assert unavailable_count() == before + 2


@pytest.mark.parametrize("options", [{"rate_limit": "lots"}, {"rate_limit_wait": -1}])
def test_a_limit_that_cannot_work_is_refused(connect: Connect, options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        connect(**options)
