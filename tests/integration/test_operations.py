"""Health, readiness and metrics endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from casedesk.app import create_app
from casedesk.bootstrap import build
from tests.conftest import Tenants, settings_for


async def _client_for(url: str, **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    container = build(settings_for(url, **settings))
    transport = httpx.ASGITransport(app=create_app(container=container))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http
    await container.close()


async def test_healthz_needs_nothing(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


async def test_readyz_checks_redis_and_the_broker_when_configured(
    backend_url: str,
    redis_url: str,
    broker_url: str,
) -> None:
    async for http in _client_for(backend_url, redis_url=redis_url, broker_url=broker_url):
        response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "broker": "ok"}


async def test_readyz_is_503_naming_what_is_unreachable(backend_url: str) -> None:
    async for http in _client_for(
        backend_url, redis_url="redis://127.0.0.1:1/0", broker_url="amqp://guest:guest@127.0.0.1:1/"
    ):
        response = await http.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"].startswith("unreachable")
    assert checks["broker"].startswith("unreachable")


async def test_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    await client.get(f"/api/v1/users/{tenant.admin_id}", headers=tenant.headers)
    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'route="/api/v1/users/{user_id}"' in text
    assert "casedesk_http_request_duration_seconds_bucket" in text


async def test_openapi_and_docs_are_served(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "/api/v1/me" in schema["paths"]
    assert "/api/v1/users/{user_id}" in schema["paths"]
    assert (await client.get("/docs")).status_code == 200
