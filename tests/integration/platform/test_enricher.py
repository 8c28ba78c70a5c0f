"""The enricher stage against a real HTTP server on 127.0.0.1: ids become entities, batched,
memoized, bounded per connection and retried through the hub; a vanished entity is dropped
with its trace while the rest goes on, and any other failure raises."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from casedesk.config import load_settings
from casedesk.integrations.hub import Hub
from casedesk.integrations.manifests import ConnectorManifest, EnricherDef, parse_manifest
from casedesk.integrations.runtime import Account, ConnectorClient
from casedesk.kit.tracing import new_trace
from casedesk.platform.enricher import (
    ConnectionLimits,
    EnrichmentFailed,
    Gone,
    Memo,
    enrich,
)
from casedesk.traces.buffer import TraceBuffer
from tests.support.http_server import LocalHTTPServer, Reply, local_http_server

TENANT = uuid.UUID("0190f5c4-0000-7000-8000-0000000000e1")
MANIFEST: dict[str, Any] = {
    "id": "shop",
    "name": "Shop",
    "base_url": "{{ connection.base_url }}",
    "enrichers": {
        "order": {"request": {"path": "/orders/{{ id }}"}, "entity": "order"},
        "batched": {
            "request": {"path": "/orders/{{ id }}"},
            "entity": "order",
            "batch": {
                "request": {"path": "/orders", "query": {"ids": "{{ ids | join(',') }}"}},
                "entities": "orders",
                "entity_id": "id",
                "max_ids": 3,
            },
        },
        "slow": {"request": {"path": "/slow/{{ id }}"}, "concurrency": 2},
    },
}


@pytest.fixture(scope="module")
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
async def hub(traces: TraceBuffer) -> AsyncIterator[Hub]:
    async with Hub(load_settings(outbound_allowed_networks="127.0.0.0/8"), recorder=traces) as hub:
        yield hub


@pytest.fixture
def manifest() -> ConnectorManifest:
    return parse_manifest(MANIFEST)


def client_for(hub: Hub, manifest: ConnectorManifest, server: LocalHTTPServer) -> ConnectorClient:
    account = Account(TENANT, uuid.uuid4(), {"base_url": server.url})
    return ConnectorClient(hub, manifest, account)


def order(order_id: str) -> Reply:
    return Reply.json({"order": {"id": order_id, "total": 10}})


async def test_a_batch_endpoint_fetches_ids_a_batch_at_a_time_and_asks_alone_for_the_missing(
    hub: Hub, manifest: ConnectorManifest, server: LocalHTTPServer
) -> None:
    # The batch answer holds a-d whatever is asked: each batch takes only its own ids.
    server.script("/orders", Reply.json({"orders": [{"id": i, "n": i} for i in "abcd"]}))
    server.script("/orders/e", order("e"))
    client = client_for(hub, manifest, server)

    enriched = await enrich(
        client, manifest.enrichers["batched"], list("abcde"), execution_id="x1", traceparent=None
    )

    assert list(enriched.entities) == list("abcde")
    assert enriched.entities["c"] == {"id": "c", "n": "c"}
    assert enriched.entities["e"] == {"id": "e", "total": 10}  # asked for alone, by id
    assert enriched.gone == []
    batches = sorted(received.query for received in server.requests_to("/orders"))
    assert batches == ["ids=a%2Cb%2Cc", "ids=d%2Ce"]
    assert len(server.requests_to("/orders/e")) == 1
    assert [r.path for r in server.received if r.path.startswith("/orders/")] == ["/orders/e"]


async def test_an_id_is_fetched_once_per_run_whatever_the_number_of_events_naming_it(
    hub: Hub, manifest: ConnectorManifest, server: LocalHTTPServer
) -> None:
    for name in "abc":
        server.script(f"/orders/{name}", order(name))
    server.script("/orders/gone", Reply.json({"error": "not found"}, status=404))
    client = client_for(hub, manifest, server)
    memo = Memo()
    enricher = manifest.enrichers["order"]

    first = await enrich(
        client, enricher, ["a", "a", "b", "gone"], execution_id="x", traceparent=None, memo=memo
    )
    second = await enrich(
        client, enricher, ["b", "c", "gone"], execution_id="x", traceparent=None, memo=memo
    )

    assert list(first.entities) == ["a", "b"]
    assert list(second.entities) == ["b", "c"]
    assert [g.id for g in first.gone] == [g.id for g in second.gone] == ["gone"]
    for path in ("/orders/a", "/orders/b", "/orders/c", "/orders/gone"):
        assert len(server.requests_to(path)) == 1, path
    # Another connection's client does not share the run's memo entries.
    other = client_for(hub, manifest, server)
    await enrich(other, enricher, ["a"], execution_id="x", traceparent=None, memo=memo)
    assert len(server.requests_to("/orders/a")) == 2


async def test_at_most_the_enrichers_concurrency_of_calls_reach_the_source_at_once(
    hub: Hub, manifest: ConnectorManifest, server: LocalHTTPServer
) -> None:
    for n in range(6):
        server.script(
            f"/slow/{n}", Reply(200, b"{}", {"content-type": "application/json"}, delay=0.2)
        )
    client = client_for(hub, manifest, server)
    limits = ConnectionLimits()
    enricher = manifest.enrichers["slow"]
    assert enricher.concurrency == 2

    # Two runs on one connection at once share its limit.
    runs = await asyncio.gather(
        enrich(
            client, enricher, ["0", "1", "2"], execution_id="r1", traceparent=None, limits=limits
        ),
        enrich(
            client, enricher, ["3", "4", "5"], execution_id="r2", traceparent=None, limits=limits
        ),
    )

    assert [list(run.entities) for run in runs] == [["0", "1", "2"], ["3", "4", "5"]]
    assert len(server.received) == 6
    assert server.max_in_flight == 2


async def test_a_vanished_entity_is_dropped_with_its_trace_while_the_rest_goes_on(
    hub: Hub, manifest: ConnectorManifest, server: LocalHTTPServer, traces: TraceBuffer
) -> None:
    server.script("/orders/a", order("a"))
    server.script("/orders/deleted", Reply.json({"error": "gone"}, status=410))
    server.script("/orders/b", order("b"))
    client = client_for(hub, manifest, server)
    run = new_trace()

    enriched = await enrich(
        client,
        manifest.enrichers["order"],
        ["a", "deleted", "b"],
        execution_id="exec-7",
        traceparent=run.traceparent,
    )

    assert list(enriched.entities) == ["a", "b"]
    (gone,) = enriched.gone
    assert isinstance(gone, Gone)
    assert (gone.id, gone.status, gone.trace_id) == ("deleted", 410, run.trace_id)
    records = traces.drain(100)
    (call,) = [r for r in records if r.url.endswith("/orders/deleted")]
    assert (call.trace_id, call.parent_span_id, call.status) == (run.trace_id, gone.span_id, 410)
    assert (call.execution_id, call.action) == ("exec-7", "enrich")
    assert {r.trace_id for r in records} == {run.trace_id}


async def test_any_other_failure_raises_so_the_run_is_retried_later(
    hub: Hub, manifest: ConnectorManifest, server: LocalHTTPServer
) -> None:
    server.script("/orders/a", order("a"))
    server.script("/orders/broken", Reply.json({"error": "boom"}, status=500))
    client = client_for(hub, manifest, server)
    run = new_trace()

    with pytest.raises(EnrichmentFailed) as raised:
        await enrich(
            client,
            manifest.enrichers["order"],
            ["a", "broken"],
            execution_id="x",
            traceparent=run.traceparent,
        )

    failure = raised.value
    assert (failure.entity_id, failure.status, failure.trace_id) == ("broken", 500, run.trace_id)
    assert "answered 500" in str(failure)
    assert len(server.requests_to("/orders/broken")) == 1  # a 500 is not retried by the hub


async def test_a_transient_answer_is_retried_through_the_hub(
    hub: Hub, manifest: ConnectorManifest, server: LocalHTTPServer
) -> None:
    server.script("/orders/flaky", Reply.json({"error": "busy"}, status=503), order("flaky"))
    client = client_for(hub, manifest, server)

    enriched = await enrich(
        client, manifest.enrichers["order"], ["flaky"], execution_id="x", traceparent=None
    )

    assert enriched.entities == {"flaky": {"id": "flaky", "total": 10}}
    assert len(server.requests_to("/orders/flaky")) == 2


async def test_an_answer_without_the_entity_is_a_failure_not_a_gone_entity(
    hub: Hub, manifest: ConnectorManifest, server: LocalHTTPServer
) -> None:
    server.script("/orders/odd", Reply.json({"unexpected": True}))
    client = client_for(hub, manifest, server)
    enricher: EnricherDef = manifest.enrichers["order"]

    with pytest.raises(EnrichmentFailed, match="holds no entity"):
        await enrich(client, enricher, ["odd"], execution_id="x", traceparent=None)
