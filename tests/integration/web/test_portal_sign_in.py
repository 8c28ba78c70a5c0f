"""Customers' sign-in to the portal, on SQLite, PostgreSQL and MariaDB: an agent hands a
customer a link through the API; the link works once, within its time, on its own portal
only; the session it opens ends on sign-out; a new address becomes one customer."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from casedesk.bootstrap import Container
from casedesk.domain.identity.roles import Role
from casedesk.kit.clock import utcnow
from casedesk.store.models import PortalLink
from casedesk.store.tenancy import ALL_TENANTS
from tests.conftest import TenantHandle, Tenants
from tests.support.web import hidden


async def _link(http: httpx.AsyncClient, tenant: TenantHandle, email: str) -> str:
    made = await http.post("/api/v1/portal-links", json={"email": email}, headers=tenant.headers)
    assert made.status_code == 201, made.text
    url: str = made.json()["url"]
    assert url.startswith(str(http.base_url).rstrip("/") + f"/portal/{tenant.slug}/link/")
    return url.removeprefix(str(http.base_url).rstrip("/"))


async def _spend(http: httpx.AsyncClient, path: str) -> httpx.Response:
    page = await http.get(path)
    assert page.status_code == 200, page.text
    return await http.post(path, data={"form_token": hidden(page.text, "form_token")})


async def test_a_link_signs_in_once_and_the_session_ends_on_sign_out(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    first = await _link(client, tenant, "Eve@Example.com")
    second = await _link(client, tenant, "eve@example.com")
    assert (await _spend(client, first)).status_code == 404, "a newer link ends the older"
    spent = await _spend(client, second)
    assert spent.status_code == 303
    cookie = next(c for c in spent.headers.get_list("set-cookie") if "casedesk_portal=" in c)
    assert "HttpOnly" in cookie
    assert "Path=/portal/" in cookie
    page = await client.get(f"/portal/{tenant.slug}/cases")
    assert page.status_code == 200
    assert "eve@example.com" in page.text
    assert (await _spend(client, second)).status_code == 404, "a link works once"

    customers = await client.get(
        "/api/v1/cases", params={"customer": "eve@example.com"}, headers=tenant.headers
    )
    assert customers.status_code == 200
    out = await client.post(
        f"/portal/{tenant.slug}/sign-out", data={"csrf_token": hidden(page.text, "csrf_token")}
    )
    assert out.status_code == 303
    client.cookies.set("casedesk_portal", cookie.split(";")[0].split("=", 1)[1], path="/portal/")
    assert (await client.get(f"/portal/{tenant.slug}/cases")).status_code == 303


async def test_an_expired_or_foreign_link_is_unknown(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    tenant, other = await tenants.create(), await tenants.create()
    foreign = await _link(client, tenant, "fay@example.com")
    token = foreign.rsplit("/", 1)[1]
    assert (await _spend(client, f"/portal/{other.slug}/link/{token}")).status_code == 404
    async with container.unit_of_work() as uow:
        await uow.session.execute(
            update(PortalLink)
            .values(expires_at=utcnow() - timedelta(seconds=1))
            .execution_options(**{ALL_TENANTS: True})
        )
        await uow.commit()
    expired = await _spend(client, foreign)
    assert expired.status_code == 404
    assert "expired" in expired.text


async def test_only_agents_hand_out_links_and_bad_addresses_are_named(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    viewer = await tenants.member(tenant.id, Role.VIEWER)
    refused = await client.post(
        "/api/v1/portal-links", json={"email": "gil@example.com"}, headers=viewer.headers
    )
    assert refused.status_code == 403
    bad = await client.post("/api/v1/portal-links", json={"email": "gil"}, headers=tenant.headers)
    assert bad.status_code == 422
    assert "email" in bad.text
