"""Background work as processes: inside `casedesk serve` by default, or in `casedesk worker`."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import text

from casedesk.store.database import nullpool_engine
from tests.e2e.test_cli_and_server import _env, casedesk, served
from tests.support.backends import ScratchDatabase
from tests.support.cases import BASIC_MACHINE

pytestmark = pytest.mark.e2e


def _setup(base: str, key: str) -> httpx.Client:
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    http.post("/api/v1/queues", json={"code": "support", "name": "Support"}).raise_for_status()
    body = {"code": "basic", "name": "Basic"} | BASIC_MACHINE
    http.post("/api/v1/state-machines", json=body).raise_for_status()
    http.post("/api/v1/state-machines/basic/publish").raise_for_status()
    http.post(
        "/api/v1/templates",
        json={"code": "q", "name": "Q", "state_machine": "basic", "default_queue": "support"},
    ).raise_for_status()
    return http


async def _unpublished(url: str) -> int:
    engine = nullpool_engine(url)
    try:
        async with asyncio.timeout(30), engine.connect() as connection:
            count = await connection.scalar(
                text("SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL")
            )
    finally:
        await engine.dispose()
    return int(count or 0)


async def _wait_until_published(url: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while await _unpublished(url):
        if time.monotonic() > deadline:
            pytest.fail("events were not relayed in time")
        time.sleep(0.1)


def _demo_key(url: str) -> str:
    assert casedesk(url, "db", "upgrade").returncode == 0
    return next(
        line for line in casedesk(url, "demo").stdout.splitlines() if line.startswith("cdk_")
    )


async def test_serve_relays_events_itself_in_the_embedded_mode(
    empty_database: ScratchDatabase,
) -> None:
    url = empty_database.url
    key = _demo_key(url)
    with served(url) as base:
        http = _setup(base, key)
        http.post("/api/v1/cases", json={"template": "q", "title": "t"}).raise_for_status()
        await _wait_until_published(url)


async def test_separate_workers_relay_what_serve_leaves_and_stop_on_sigterm(
    empty_database: ScratchDatabase,
) -> None:
    url = empty_database.url
    key = _demo_key(url)
    with served(url, CASEDESK_SEPARATE_WORKERS="true") as base:
        http = _setup(base, key)
        http.post("/api/v1/cases", json={"template": "q", "title": "t"}).raise_for_status()
        time.sleep(0.5)
        assert await _unpublished(url) == 2
        worker = subprocess.Popen(
            [sys.executable, "-m", "casedesk", "worker"],
            env=_env(url),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            await _wait_until_published(url)
        finally:
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 0, output
    assert "background work stopped" in output


async def test_the_embedded_server_delivers_a_signed_webhook(
    empty_database: ScratchDatabase,
) -> None:
    from standardwebhooks import Webhook

    from tests.support.http_server import local_http_server

    url = empty_database.url
    key = _demo_key(url)
    async with local_http_server() as receiver:
        with served(url, CASEDESK_OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8") as base:
            http = _setup(base, key)
            hook = http.post(
                "/api/v1/webhooks",
                json={"name": "r", "url": f"{receiver.url}/in", "events": ["case.created"]},
            ).json()
            case = http.post("/api/v1/cases", json={"template": "q", "title": "t"}).json()
            deadline = time.monotonic() + 20
            while not receiver.requests_to("/in"):
                if time.monotonic() > deadline:
                    pytest.fail("the webhook was not delivered in time")
                await asyncio.sleep(0.1)
            [request] = receiver.requests_to("/in")
            event = Webhook(hook["secret"]).verify(request.body, dict(request.headers))
            assert event["subject"] == case["id"]
