"""A person in a browser, as far as HTTP goes: a password set through a one-time link, a
signed-in session in the client's cookie jar, the forms' tokens read off the pages."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.conftest import TenantHandle

PASSWORD = "correct horse battery"


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, f"no {name} in the page"
    return found.group(1)


async def password_link(http: httpx.AsyncClient, tenant: TenantHandle, user_id: uuid.UUID) -> str:
    made = await http.post(
        f"/api/v1/users/{user_id}/password-link", json={}, headers=tenant.headers
    )
    assert made.status_code == 201, made.text
    url: str = made.json()["url"]
    return url.removeprefix(str(http.base_url).rstrip("/"))


async def set_password(
    http: httpx.AsyncClient, path: str, password: str = PASSWORD
) -> httpx.Response:
    form = await http.get(path)
    assert form.status_code == 200, form.text
    return await http.post(
        path,
        data={
            "form_token": hidden(form.text, "form_token"),
            "password": password,
            "password_again": password,
        },
    )


async def sign_in(
    http: httpx.AsyncClient, workspace: str, email: str, password: str = PASSWORD
) -> httpx.Response:
    form = await http.get("/sign-in")
    return await http.post(
        "/sign-in",
        data={
            "form_token": hidden(form.text, "form_token"),
            "next": "/app",
            "workspace": workspace,
            "email": email,
            "password": password,
        },
    )


async def email_of(http: httpx.AsyncClient, tenant: TenantHandle, user_id: uuid.UUID) -> str:
    user = await http.get(f"/api/v1/users/{user_id}", headers=tenant.headers)
    email: str = user.json()["email"]
    return email


async def signed_in(http: httpx.AsyncClient, tenant: TenantHandle, user_id: uuid.UUID) -> str:
    """Give the user a password and sign them in on ``http``; their address."""
    assert (await set_password(http, await password_link(http, tenant, user_id))).status_code == 303
    email = await email_of(http, tenant, user_id)
    assert (await sign_in(http, tenant.slug, email)).status_code == 303
    return email
