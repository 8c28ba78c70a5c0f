"""API key management over HTTP."""

from __future__ import annotations

import httpx

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants


async def test_a_created_key_is_shown_once_and_works(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    created = await client.post("/api/v1/api-keys", json={"name": "zapier"}, headers=tenant.headers)
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith(body["prefix"] + "_")
    assert body["user_id"] == str(tenant.admin_id)

    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['key']}"})
    assert me.status_code == 200

    read = await client.get(f"/api/v1/api-keys/{body['id']}", headers=tenant.headers)
    assert "key" not in read.json()
    listed = await client.get("/api/v1/api-keys", headers=tenant.headers)
    assert all("key" not in item for item in listed.json()["items"])
    assert body["id"] in {item["id"] for item in listed.json()["items"]}


async def test_an_admin_makes_a_key_for_another_user_but_an_agent_cannot(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    agent = await tenants.member(tenant.id, Role.AGENT)
    for_agent = await client.post(
        "/api/v1/api-keys", json={"name": "bot", "user_id": str(agent.id)}, headers=tenant.headers
    )
    assert for_agent.status_code == 201
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {for_agent.json()['key']}"}
    )
    assert me.json()["user"]["id"] == str(agent.id)

    stolen = await client.post(
        "/api/v1/api-keys",
        json={"name": "escalate", "user_id": str(tenant.admin_id)},
        headers=agent.headers,
    )
    assert stolen.status_code == 403
    own = await client.post("/api/v1/api-keys", json={"name": "mine"}, headers=agent.headers)
    assert own.status_code == 201


async def test_non_admins_see_and_revoke_only_their_own_keys(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    agent = await tenants.member(tenant.id, Role.AGENT)
    admin_key = (
        await client.post("/api/v1/api-keys", json={"name": "adm"}, headers=tenant.headers)
    ).json()
    listed = await client.get("/api/v1/api-keys", headers=agent.headers)
    assert {item["user_id"] for item in listed.json()["items"]} == {str(agent.id)}
    assert (
        await client.get(f"/api/v1/api-keys/{admin_key['id']}", headers=agent.headers)
    ).status_code == 404
    assert (
        await client.delete(f"/api/v1/api-keys/{admin_key['id']}", headers=agent.headers)
    ).status_code == 404
    still = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {admin_key['key']}"})
    assert still.status_code == 200


async def test_another_tenants_key_is_404(client: httpx.AsyncClient, tenants: Tenants) -> None:
    a, b = await tenants.create(), await tenants.create()
    key = (await client.post("/api/v1/api-keys", json={"name": "b"}, headers=b.headers)).json()
    assert (await client.get(f"/api/v1/api-keys/{key['id']}", headers=a.headers)).status_code == 404
    assert (
        await client.delete(f"/api/v1/api-keys/{key['id']}", headers=a.headers)
    ).status_code == 404
    works = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {key['key']}"})
    assert works.status_code == 200


async def test_revoking_twice_is_harmless(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create()
    key = (await client.post("/api/v1/api-keys", json={"name": "k"}, headers=tenant.headers)).json()
    url = f"/api/v1/api-keys/{key['id']}"
    assert (await client.delete(url, headers=tenant.headers)).status_code == 204
    first = (await client.get(url, headers=tenant.headers)).json()["revoked_at"]
    assert (await client.delete(url, headers=tenant.headers)).status_code == 204
    assert (await client.get(url, headers=tenant.headers)).json()["revoked_at"] == first


async def test_a_key_for_a_deactivated_user_is_refused(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    agent = await tenants.member(tenant.id, Role.AGENT)
    await client.patch(f"/api/v1/users/{agent.id}", json={"active": False}, headers=tenant.headers)
    response = await client.post(
        "/api/v1/api-keys", json={"name": "x", "user_id": str(agent.id)}, headers=tenant.headers
    )
    assert response.status_code == 409


async def test_an_expiry_in_the_past_or_without_zone_is_422(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    past = await client.post(
        "/api/v1/api-keys",
        json={"name": "x", "expires_at": "2001-01-01T00:00:00Z"},
        headers=tenant.headers,
    )
    assert past.status_code == 422
    assert past.json()["field"] == "expires_at"
    naive = await client.post(
        "/api/v1/api-keys",
        json={"name": "x", "expires_at": "2999-01-01T00:00:00"},
        headers=tenant.headers,
    )
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "expires_at"
