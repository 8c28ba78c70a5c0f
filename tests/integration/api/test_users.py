"""User management: admins manage, others read; tenants never see each other."""

from __future__ import annotations

import uuid

import httpx
import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants


async def test_admin_creates_reads_lists_and_updates_users(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    created = await client.post(
        "/api/v1/users",
        json={"email": " Ada@Example.COM ", "name": "Ada", "role": "agent"},
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["email"] == "ada@example.com"
    assert user["role"] == "agent"
    assert user["active"] is True

    read = await client.get(f"/api/v1/users/{user['id']}", headers=tenant.headers)
    assert read.json() == user

    listed = await client.get("/api/v1/users", headers=tenant.headers)
    assert {u["id"] for u in listed.json()["items"]} == {user["id"], str(tenant.admin_id)}

    changed = await client.patch(
        f"/api/v1/users/{user['id']}",
        json={"role": "viewer", "name": "Ada L."},
        headers=tenant.headers,
    )
    assert changed.status_code == 200
    assert changed.json()["role"] == "viewer"
    assert changed.json()["name"] == "Ada L."


async def test_users_page_with_a_cursor(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create()
    for n in range(5):
        response = await client.post(
            "/api/v1/users",
            json={"email": f"u{n}@example.com", "name": f"U{n}"},
            headers=tenant.headers,
        )
        assert response.status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/users", params=params, headers=tenant.headers)).json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6
    assert len(set(seen)) == 6


async def test_a_duplicate_email_is_409_and_the_first_user_is_kept(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    body = {"email": "dup@example.com", "name": "First"}
    first = await client.post("/api/v1/users", json=body, headers=tenant.headers)
    second = await client.post(
        "/api/v1/users",
        json=body | {"email": "DUP@example.com", "name": "Second"},
        headers=tenant.headers,
    )
    assert second.status_code == 409
    assert second.json()["field"] == "email"
    kept = await client.get(f"/api/v1/users/{first.json()['id']}", headers=tenant.headers)
    assert kept.json()["name"] == "First"


async def test_the_same_email_may_exist_in_two_tenants(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    a, b = await tenants.create(), await tenants.create()
    body = {"email": "shared@example.com", "name": "Shared"}
    assert (await client.post("/api/v1/users", json=body, headers=a.headers)).status_code == 201
    assert (await client.post("/api/v1/users", json=body, headers=b.headers)).status_code == 201


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT])
async def test_only_admins_create_or_change_users(
    client: httpx.AsyncClient, tenants: Tenants, role: Role
) -> None:
    tenant = await tenants.create()
    member = await tenants.member(tenant.id, role)
    created = await client.post(
        "/api/v1/users", json={"email": "x@example.com", "name": "X"}, headers=member.headers
    )
    assert created.status_code == 403
    assert created.headers["content-type"] == "application/problem+json"
    assert "admin" in created.json()["detail"]
    changed = await client.patch(
        f"/api/v1/users/{member.id}", json={"role": "admin"}, headers=member.headers
    )
    assert changed.status_code == 403
    listed = await client.get("/api/v1/users", headers=member.headers)
    assert listed.status_code == 200


async def test_another_tenants_user_is_404_for_every_verb(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    a, b = await tenants.create(), await tenants.create()
    url = f"/api/v1/users/{b.admin_id}"
    assert (await client.get(url, headers=a.headers)).status_code == 404
    patched = await client.patch(url, json={"name": "hijacked"}, headers=a.headers)
    assert patched.status_code == 404
    own = await client.get(url, headers=b.headers)
    assert own.json()["name"] != "hijacked"
    listed = await client.get("/api/v1/users", headers=a.headers)
    assert str(b.admin_id) not in {u["id"] for u in listed.json()["items"]}


async def test_an_unknown_user_is_404(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create()
    response = await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=tenant.headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_last_admin_cannot_be_demoted_or_deactivated(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    url = f"/api/v1/users/{tenant.admin_id}"
    demoted = await client.patch(url, json={"role": "agent"}, headers=tenant.headers)
    assert demoted.status_code == 409
    deactivated = await client.patch(url, json={"active": False}, headers=tenant.headers)
    assert deactivated.status_code == 409
    assert (await client.get("/api/v1/me", headers=tenant.headers)).json()["role"] == "admin"

    second = await tenants.member(tenant.id, Role.ADMIN)
    assert (
        await client.patch(url, json={"role": "agent"}, headers=second.headers)
    ).status_code == 200
