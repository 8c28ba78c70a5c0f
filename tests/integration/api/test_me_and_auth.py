"""Authentication: who a key is, and every way a key is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from casedesk.bootstrap import Container
from casedesk.domain.identity.roles import Role
from casedesk.store.models import ApiKey
from tests.conftest import Tenants

PROBLEM = "application/problem+json"


async def test_me_names_tenant_user_and_role(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create(edition="ecommerce")
    response = await client.get("/api/v1/me", headers=tenant.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"] == {
        "id": str(tenant.id),
        "slug": tenant.slug,
        "name": tenant.slug,
        "edition": "ecommerce",
    }
    assert body["user"]["id"] == str(tenant.admin_id)
    assert body["role"] == "admin"


async def test_no_key_is_a_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


async def test_unknown_and_malformed_keys_are_401(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    forged = tenant.admin_key[:-1] + ("A" if tenant.admin_key[-1] != "A" else "B")
    for token in (forged, "not-a-key", tenant.admin_key + "x"):
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
    basic = await client.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401


async def test_a_revoked_key_is_401(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create()
    created = await client.post("/api/v1/api-keys", json={"name": "ci"}, headers=tenant.headers)
    key = created.json()
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200

    revoked = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=tenant.headers)
    assert revoked.status_code == 204

    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200


async def test_an_expired_key_is_401(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    tenant = await tenants.create()
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = await client.post(
        "/api/v1/api-keys", json={"name": "short", "expires_at": soon}, headers=tenant.headers
    )
    assert created.status_code == 201
    key = created.json()
    async with container.unit_of_work(tenant.id) as uow:
        await uow.session.execute(
            update(ApiKey)
            .where(ApiKey.prefix == key["prefix"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await uow.commit()
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {key['key']}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_a_deactivated_users_keys_stop_working(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    agent = await tenants.member(tenant.id, Role.AGENT)
    assert (await client.get("/api/v1/me", headers=agent.headers)).status_code == 200
    response = await client.patch(
        f"/api/v1/users/{agent.id}", json={"active": False}, headers=tenant.headers
    )
    assert response.status_code == 200
    assert (await client.get("/api/v1/me", headers=agent.headers)).status_code == 401


async def test_using_a_key_records_when_it_was_last_used(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    tenant = await tenants.create()
    async with container.unit_of_work(tenant.id) as uow:
        key = await uow.session.scalar(select(ApiKey).where(ApiKey.user_id == tenant.admin_id))
        assert key is not None
        assert key.last_used_at is None
    before = datetime.now(UTC)
    assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200
    async with container.unit_of_work(tenant.id) as uow:
        used = await uow.api_keys.get(key.id)
    assert used.last_used_at is not None
    assert used.last_used_at >= before - timedelta(seconds=1)


async def test_the_key_itself_is_never_stored(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    tenant = await tenants.create()
    async with container.unit_of_work(tenant.id) as uow:
        rows = (await uow.session.scalars(select(ApiKey))).all()
    stored = {value for row in rows for value in (row.prefix, row.key_hash, row.name)}
    assert tenant.admin_key not in stored
    assert all(tenant.admin_key.split("_")[2] not in value for value in stored)


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32
