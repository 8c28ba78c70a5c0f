"""The action-trace API: list, filter, page, open, export as HAR, status; tenancy and roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from casedesk.bootstrap import Container
from casedesk.domain.identity.roles import Role
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.traces import sql
from casedesk.traces.documents import Document, document
from tests.conftest import TenantHandle, Tenants
from tests.integration.traces.test_pipeline import record
from tests.support.har import har_validator


async def _stored(container: Container, hot: list[Document], durable: list[Document]) -> None:
    async with UnitOfWork(container.database) as uow:
        await uow.begin_write()
        await sql.write_batch(uow.session, durable)
        await uow.commit()
    await container.hot.put_many(hot)


async def _traces(tenant_id: uuid.UUID, count: int, **fields: Any) -> list[Document]:
    base = datetime.now(UTC)
    return [
        document(record(tenant_id, started_at=base - timedelta(seconds=i), **fields))
        for i in range(count)
    ]


async def _get(client: httpx.AsyncClient, tenant: TenantHandle, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_pages_cover_both_tiers_once_newest_first(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    tenant = await tenants.create()
    docs = await _traces(tenant.id, 25)
    # The newest only hot (not persisted yet), the oldest only in SQL, the middle in both.
    await _stored(container, hot=docs[:15], durable=docs[10:])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = await _get(client, tenant, "/api/v1/traces", **params)
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [doc["id"] for doc in docs]
    first = (await _get(client, tenant, "/api/v1/traces", limit=1))["items"][0]
    assert "request" not in first  # the list is a summary; the record has the exchange
    full = await _get(client, tenant, f"/api/v1/traces/{docs[20]['id']}")
    assert full == docs[20]


async def test_filters_narrow_the_list(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    tenant = await tenants.create()
    ok = await _traces(tenant.id, 3, execution_id="exec-a")
    failed = await _traces(tenant.id, 2, status=None, url="https://api.example.com/v1/orders/9")
    await _stored(container, hot=ok, durable=failed)
    by_execution = await _get(client, tenant, "/api/v1/traces", execution_id="exec-a")
    assert {i["id"] for i in by_execution["items"]} == {d["id"] for d in ok}
    errors = await _get(client, tenant, "/api/v1/traces", status="error")
    assert {i["id"] for i in errors["items"]} == {d["id"] for d in failed}
    by_url = await _get(client, tenant, "/api/v1/traces", url="orders/9")
    assert len(by_url["items"]) == 2
    since = datetime.fromisoformat(ok[1]["started_at"]).isoformat()
    recent = await _get(client, tenant, "/api/v1/traces", since=since, execution_id="exec-a")
    assert {i["id"] for i in recent["items"]} == {ok[0]["id"], ok[1]["id"]}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"status": "6xx"}, "status"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"limit": 0}, "limit"),
        ({"connection_id": "x"}, "connection_id"),
    ],
)
async def test_bad_parameters_are_422_naming_them(
    client: httpx.AsyncClient, tenants: Tenants, params: dict[str, Any], named: str
) -> None:
    tenant = await tenants.create()
    response = await client.get("/api/v1/traces", params=params, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert named in response.text


async def test_traces_are_for_admins_of_their_tenant_only(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    owner, stranger = await tenants.create(), await tenants.create()
    docs = await _traces(owner.id, 2)
    await _stored(container, hot=docs[:1], durable=docs[1:])
    for doc in docs:
        url = f"/api/v1/traces/{doc['id']}"
        assert (await client.get(url, headers=stranger.headers)).status_code == 404
    assert (await _get(client, stranger, "/api/v1/traces"))["items"] == []
    har = await _get(client, stranger, "/api/v1/traces.har")
    assert har["log"]["entries"] == []
    agent = await tenants.member(owner.id, Role.AGENT)
    for url in ("/api/v1/traces", f"/api/v1/traces/{docs[0]['id']}", "/api/v1/traces.har"):
        assert (await client.get(url, headers=agent.headers)).status_code == 403


async def test_the_har_export_is_valid_har_with_every_filtered_record(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    tenant = await tenants.create()
    docs = await _traces(tenant.id, 3) + await _traces(tenant.id, 1, status=None)
    await _stored(container, hot=docs[:2], durable=docs[2:])
    response = await client.get("/api/v1/traces.har", headers=tenant.headers)
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    har = orjson.loads(response.content)
    har_validator().validate(har)
    entries = har["log"]["entries"]
    assert len(entries) == 4
    starts = [entry["startedDateTime"] for entry in entries]
    assert starts == sorted(starts)  # as recorded: oldest first
    assert {e["_casedesk"]["record_id"] for e in entries} == {d["id"] for d in docs}


async def test_the_status_shows_what_the_buffer_dropped(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    tenant = await tenants.create()
    before = await _get(client, tenant, "/api/v1/traces/status")
    buffer = container.traces
    for _ in range(buffer.capacity - len(buffer) + 3):
        buffer.append(record(tenant.id))
    after = await _get(client, tenant, "/api/v1/traces/status")
    buffer.drain(buffer.capacity)
    assert after["buffer"]["dropped"] == before["buffer"]["dropped"] + 3
    assert after["buffer"]["held"] == buffer.capacity
    assert after["hot_tier"] == "memory"
    assert after["hot_tier_reachable"] is True
    metrics = (await client.get("/metrics")).text
    assert "casedesk_trace_records_dropped_total" in metrics
