"""Health, readiness and metrics endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx

from casedesk.app import create_app
from casedesk.bootstrap import build, consumer_groups, job_handlers
from casedesk.store.bus.inprocess import InProcessBus
from casedesk.worker.housekeeping import Housekeeping
from casedesk.worker.runner import Background
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


class _BrokenHousekeeping(Housekeeping):
    """Housekeeping whose loop ends with an error it does not survive."""

    async def run(self, stop: asyncio.Event) -> None:
        raise RuntimeError("the sweep lost its mind")


async def test_a_background_loop_that_stopped_makes_readyz_503_and_shows_in_metrics(
    backend_url: str,
) -> None:
    container = build(settings_for(backend_url))
    app = create_app(container=container)
    work = Background(
        container.database,
        InProcessBus(),
        consumer_groups(container),
        job_handlers(container),
        _BrokenHousekeeping(container.database, keep=timedelta(days=1)),
    )
    await work.start()
    app.state.background = work
    try:
        async with asyncio.timeout(10):
            await work.failed.wait()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            ready = await http.get("/readyz")
            metrics = (await http.get("/metrics")).text
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["background"].startswith("stopped: housekeeping (RuntimeError")
        assert 'casedesk_background_loop_up{loop="housekeeping"} 0.0' in metrics
        assert 'casedesk_background_loop_up{loop="relay"} 1.0' in metrics
        assert work.stopped() == {"housekeeping": "RuntimeError: the sweep lost its mind"}
    finally:
        await work.stop()
        await container.close()


async def test_readyz_says_the_background_loops_run(backend_url: str) -> None:
    container = build(settings_for(backend_url))
    app = create_app(container=container)
    work = Background(container.database, InProcessBus(), {}, {})
    await work.start()
    app.state.background = work
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "background": "ok"}
    finally:
        await work.stop()
        await container.close()
