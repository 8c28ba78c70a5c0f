"""Every log line written while serving a request carries that request's id."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.conftest import Tenants


async def test_access_line_carries_the_request_id_and_tenant(
    client: httpx.AsyncClient, tenants: Tenants, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await tenants.create()
    caplog.set_level(logging.INFO, logger="casedesk.access")
    response = await client.get(
        "/api/v1/me", headers=tenant.headers | {"X-Request-ID": "trace-me-42"}
    )
    assert response.headers["x-request-id"] == "trace-me-42"
    lines = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    access = [line for line in lines if line.get("event") == "request"]
    assert access, lines
    assert access[-1]["request_id"] == "trace-me-42"
    assert access[-1]["tenant"] == tenant.slug
    assert access[-1]["status"] == 200
    assert access[-1]["route"] == "/api/v1/me"
