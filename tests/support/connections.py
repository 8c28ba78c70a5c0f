"""Custom connectors and connections set up over the API, and the traces of their calls."""

from __future__ import annotations

from typing import Any

import httpx
import yaml

from casedesk.bootstrap import Container
from casedesk.traces.documents import Document, document
from tests.conftest import TenantHandle
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET

REDIRECT_URI = "http://casedesk.test/api/v1/oauth/callback"
"""Where the app under test (``http://casedesk.test``) takes OAuth2 callbacks."""


def oauth_manifest(code: str = "acme", *, grant: str = "oauth2_code") -> dict[str, Any]:
    """A connector whose auth, API and test request are the local OAuth2 server's."""
    auth: dict[str, Any] = {
        "type": grant,
        "token_url": "{{ connection.base_url }}/oauth/token",
        "scopes": ["read", "write"],
    }
    if grant == "oauth2_code":
        auth["authorize_url"] = "{{ connection.base_url }}/oauth/authorize"
    return {
        "id": code,
        "name": "Acme API",
        "base_url": "{{ connection.base_url }}",
        "connection": {
            "settings": {
                "type": "object",
                "required": ["base_url", "client_id"],
                "additionalProperties": False,
                "properties": {"base_url": {"type": "string"}, "client_id": {"type": "string"}},
            },
            "secrets": [{"name": "client_secret", "title": "Client secret"}],
            "test": {"path": "/api/me"},
        },
        "auth": auth,
        "actions": {"me": {"title": "Who am I", "request": {"path": "/api/me"}}},
    }


async def publish(
    http: httpx.AsyncClient, tenant: TenantHandle, manifest: dict[str, Any]
) -> dict[str, Any]:
    saved = await http.post(
        "/api/v1/connectors",
        content=yaml.safe_dump(manifest),
        headers=tenant.headers | {"Content-Type": "application/yaml"},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["draft_problems"] == [], saved.text
    published = await http.post(
        f"/api/v1/connectors/{manifest['id']}/publish", headers=tenant.headers
    )
    assert published.status_code == 201, published.text
    return dict(published.json())


async def oauth_connection(
    http: httpx.AsyncClient, tenant: TenantHandle, base_url: str, *, code: str = "acme"
) -> dict[str, Any]:
    created = await http.post(
        "/api/v1/connections",
        json={
            "name": "Acme",
            "connector": code,
            "settings": {"base_url": base_url, "client_id": CLIENT_ID},
            "secrets": {"client_secret": CLIENT_SECRET},
        },
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def traces_of(
    container: Container, http: httpx.AsyncClient, tenant: TenantHandle, connection_id: str
) -> list[Document]:
    """Every trace of the connection, through the API, after this process's records are
    moved to the hot tier (as the flusher does)."""
    records = container.traces.drain(100_000)
    await container.hot.put_many([document(record) for record in records])
    listed = await http.get(
        "/api/v1/traces",
        params={"connection_id": connection_id, "limit": 200},
        headers=tenant.headers,
    )
    assert listed.status_code == 200, listed.text
    full = []
    for item in listed.json()["items"]:
        one = await http.get(f"/api/v1/traces/{item['id']}", headers=tenant.headers)
        assert one.status_code == 200, one.text
        full.append(one.json())
    return full
