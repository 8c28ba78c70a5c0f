"""Connections over the API: settings checked by the connector's schema, secrets sealed and
only masked, versions pinned, roles, tenancy, and deletion refused while a workflow uses one."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from casedesk.bootstrap import Container
from casedesk.domain.identity.roles import Role
from casedesk.store.models import Connection, Subscription, Workflow
from tests.conftest import TenantHandle, Tenants
from tests.support.connections import oauth_manifest, publish

API = "/api/v1/connections"
TOKEN = "tok-9f8e7d6c5b4a3210-zz"


async def _create(http: httpx.AsyncClient, tenant: TenantHandle, **body: Any) -> httpx.Response:
    body.setdefault("name", "Tickets")
    body.setdefault("connector", "rest")
    body.setdefault("settings", {"base_url": "https://api.example.com/v1"})
    return await http.post(API, json=body, headers=tenant.headers)


async def test_a_connection_keeps_its_secrets_sealed_and_shows_only_a_mask(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    tenant = await tenants.create()
    created = await _create(client, tenant, secrets={"token": TOKEN})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secrets"] == {"token": {"set": True, "mask": "****" + TOKEN[-4:]}}
    assert (body["connector"], body["connector_version"], body["status"]) == ("rest", 1, "active")
    answers = [created.text]
    answers.append((await client.get(f"{API}/{body['id']}", headers=tenant.headers)).text)
    answers.append((await client.get(API, headers=tenant.headers)).text)
    assert all(TOKEN not in answer and TOKEN[:8] not in answer for answer in answers)
    async with container.unit_of_work(tenant.id) as uow:
        stored = await uow.connections.get(uuid.UUID(body["id"]))
    assert stored.secrets_sealed is not None
    assert TOKEN not in stored.secrets_sealed
    assert container.box.open(stored.secrets_sealed) == f'{{"token":"{TOKEN}"}}'


async def test_a_short_secret_shows_no_characters_at_all(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    created = await _create(client, tenant, secrets={"token": "abc12"})
    assert created.json()["secrets"]["token"] == {"set": True, "mask": "****"}
    unset = await _create(client, tenant)
    assert unset.json()["secrets"]["token"] == {"set": False, "mask": None}


async def test_a_replace_keeps_secrets_it_does_not_name_and_clears_those_set_to_null(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    made = (await _create(client, tenant, secrets={"token": TOKEN})).json()
    url = f"{API}/{made['id']}"
    settings = {"base_url": "https://api.example.com/v2"}
    kept = await client.put(
        url, json={"name": "Renamed", "settings": settings}, headers=tenant.headers
    )
    assert kept.status_code == 200, kept.text
    assert (kept.json()["name"], kept.json()["settings"]) == ("Renamed", settings)
    assert kept.json()["secrets"]["token"]["set"] is True
    cleared = await client.put(
        url,
        json={"name": "Renamed", "settings": settings, "secrets": {"token": None}},
        headers=tenant.headers,
    )
    assert cleared.json()["secrets"]["token"] == {"set": False, "mask": None}
    moved = await client.put(
        url,
        json={"name": "x", "settings": settings, "connector": "webhook"},
        headers=tenant.headers,
    )
    assert moved.status_code == 422
    assert moved.json()["field"] == "connector"


async def test_settings_are_checked_by_the_connectors_schema_naming_each_field(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    await publish(client, tenant, oauth_manifest("acme"))
    refused = await _create(
        client, tenant, connector="acme", settings={"base_url": 7, "extra": True}
    )
    assert refused.status_code == 422, refused.text
    fields = {error["field"] for error in refused.json()["errors"]}
    assert fields == {"settings.base_url", "settings.client_id", "settings"}
    messages = " ".join(error["message"] for error in refused.json()["errors"])
    assert "'extra' was unexpected" in messages


async def test_unknown_connectors_versions_and_secret_fields_are_named(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    unknown = await _create(client, tenant, connector="nope")
    assert (unknown.status_code, unknown.json()["field"]) == (422, "connector")
    wrong = await _create(client, tenant, connector_version=2)
    assert (wrong.status_code, wrong.json()["field"]) == (422, "connector_version")
    secret = await _create(client, tenant, secrets={"token": "x", "password": "y"})
    assert secret.status_code == 422
    assert [e["field"] for e in secret.json()["errors"]] == ["secrets.password"]
    draft_only = await client.post(
        "/api/v1/connectors", json=oauth_manifest("drafty"), headers=tenant.headers
    )
    assert draft_only.status_code == 200
    unpublished = await _create(client, tenant, connector="drafty")
    assert unpublished.status_code == 422
    assert "publish it first" in unpublished.json()["detail"]


async def test_a_custom_connector_is_pinned_to_a_version(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    await publish(client, tenant, oauth_manifest("acme"))
    await publish(client, tenant, oauth_manifest("acme") | {"name": "Acme 2"})
    settings = {"base_url": "https://acme.example.com", "client_id": "c"}
    latest = await _create(client, tenant, connector="acme", settings=settings)
    assert latest.json()["connector_version"] == 2
    pinned = await _create(client, tenant, connector="acme", connector_version=1, settings=settings)
    assert pinned.json()["connector_version"] == 1
    await publish(client, tenant, oauth_manifest("acme") | {"name": "Acme 3"})
    read = await client.get(f"{API}/{pinned.json()['id']}", headers=tenant.headers)
    assert read.json()["connector_version"] == 1
    assert read.json()["status"] == "needs_reauth"  # OAuth2: not authorized yet
    assert read.json()["authorized"] is False


async def test_admins_write_and_every_role_reads(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    made = (await _create(client, tenant)).json()
    viewer = await tenants.member(tenant.id, Role.VIEWER)
    assert (await client.get(f"{API}/{made['id']}", headers=viewer.headers)).status_code == 200
    assert (await client.get(API, headers=viewer.headers)).status_code == 200
    body = {"name": "x", "connector": "rest", "settings": {"base_url": "https://a.example"}}
    assert (await client.post(API, json=body, headers=viewer.headers)).status_code == 403
    assert (
        await client.put(f"{API}/{made['id']}", json=body, headers=viewer.headers)
    ).status_code == 403
    assert (await client.delete(f"{API}/{made['id']}", headers=viewer.headers)).status_code == 403
    checks = await client.post(f"{API}/{made['id']}/test", headers=viewer.headers)
    assert checks.status_code == 403


async def test_another_tenants_connection_is_not_found(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owner, other = await tenants.create(), await tenants.create()
    made = (await _create(client, owner, secrets={"token": TOKEN})).json()
    url = f"{API}/{made['id']}"
    body = {"name": "x", "settings": {"base_url": "https://a.example"}}
    for answer in (
        await client.get(url, headers=other.headers),
        await client.put(url, json=body, headers=other.headers),
        await client.delete(url, headers=other.headers),
        await client.post(f"{url}/test", headers=other.headers),
        await client.post(f"{url}/authorize", headers=other.headers),
    ):
        assert answer.status_code == 404, answer.text
    assert (await client.get(API, headers=other.headers)).json()["items"] == []


async def test_the_list_pages_with_a_cursor(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create()
    made = [(await _create(client, tenant, name=f"c{i}")).json()["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(API, params=params, headers=tenant.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made


async def test_a_connection_a_workflow_uses_is_not_deleted(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    tenant = await tenants.create()
    by_subscription = (await _create(client, tenant)).json()
    by_step = (await _create(client, tenant)).json()
    unused = (await _create(client, tenant)).json()
    async with container.unit_of_work(tenant.id) as uow:
        await uow.begin_write()
        polls = uow.workflows.add(Workflow(code="polls", name="Polls", draft={}, latest_version=0))
        uow.workflows.add(
            Workflow(
                code="posts",
                name="Posts",
                draft={"steps": [{"kind": "http_request", "connection_id": by_step["id"]}]},
                latest_version=0,
            )
        )
        await uow.flush()
        uow.subscriptions.add(
            Subscription(
                workflow_id=polls.id,
                connection_id=uuid.UUID(by_subscription["id"]),
                trigger="new_item",
                settings={},
            )
        )
        await uow.commit()
    for used, code in ((by_subscription, "polls"), (by_step, "posts")):
        refused = await client.delete(f"{API}/{used['id']}", headers=tenant.headers)
        assert refused.status_code == 409, refused.text
        assert [w["code"] for w in refused.json()["workflows"]] == [code]
        assert code in refused.json()["detail"]
    assert (await client.delete(f"{API}/{unused['id']}", headers=tenant.headers)).status_code == 204
    assert (await client.get(f"{API}/{unused['id']}", headers=tenant.headers)).status_code == 404
    async with container.unit_of_work(tenant.id) as uow:
        left = (await uow.session.scalars(select(Connection.id))).all()
    assert {str(i) for i in left} == {by_subscription["id"], by_step["id"]}


async def test_bad_input_is_a_4xx_naming_the_field(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    nul = await _create(client, tenant, name="a\x00b")
    assert (nul.status_code, nul.json()["errors"][0]["field"]) == (422, "name")
    secret_nul = await _create(client, tenant, secrets={"token": "a\x00"})
    assert secret_nul.status_code == 422
    long = await _create(client, tenant, secrets={"token": "x" * 9000})
    assert long.status_code == 422
    assert (await client.get(f"{API}/not-a-uuid", headers=tenant.headers)).status_code == 422
    assert (await client.get(API, params={"limit": 0}, headers=tenant.headers)).status_code == 422
    deep: dict[str, Any] = {}
    for _ in range(20):
        deep = {"a": deep}
    too_deep = await _create(client, tenant, settings={"base_url": "https://a.example", "x": deep})
    assert too_deep.status_code == 422
    no_test = await client.post(
        f"{API}/{(await _create(client, tenant)).json()['id']}/test", headers=tenant.headers
    )
    assert no_test.status_code == 409
    assert "no test request" in no_test.json()["detail"]


async def test_a_header_that_cannot_be_sent_is_refused_and_never_a_500(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    manifest = {
        "id": "squads",
        "name": "Squads",
        "base_url": "https://squads.example.com",
        "auth": {"type": "bearer"},
        "connection": {
            "secrets": [{"name": "token"}],
            "test": {"path": "/me", "headers": {"X-Team": "{{ connection.team }}"}},
        },
    }
    await publish(client, tenant, manifest)
    refused = await _create(
        client, tenant, connector="squads", settings={}, secrets={"token": "tök…"}
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["secrets.token"]
    made = await _create(
        client, tenant, connector="squads", settings={"team": "Zürich"}, secrets={"token": TOKEN}
    )
    assert made.status_code == 201, made.text
    checked = await client.post(f"{API}/{made.json()['id']}/test", headers=tenant.headers)
    assert checked.status_code == 200, checked.text
    assert checked.json()["ok"] is False
    assert "X-Team header" in checked.json()["reason"]


async def test_webhooks_can_listen_for_connections_that_need_authorization(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    body = {
        "name": "ops",
        "url": "https://ops.example.com/hook",
        "events": ["connection.needs_reauth"],
    }
    made = await client.post("/api/v1/webhooks", json=body, headers=tenant.headers)
    assert made.status_code == 201, made.text
    family = body | {"events": ["connection.*"]}
    assert (
        await client.post("/api/v1/webhooks", json=family, headers=tenant.headers)
    ).status_code == 201
