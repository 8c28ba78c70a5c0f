"""The action trace end to end: a running server's outbound call, live-tailed, listed, exported."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.test_worker import _demo_key, _setup
from tests.support.backends import ScratchDatabase
from tests.support.har import har_validator
from tests.support.http_server import local_http_server

pytestmark = pytest.mark.e2e


async def _next_trace(lines: Any) -> dict[str, Any]:
    """The data of the next ``trace`` event of an SSE stream."""
    event: dict[str, str] = {}
    async for line in lines:
        if not line:
            if event.get("event") == "trace":
                data: dict[str, Any] = orjson.loads(event["data"])
                return data | {"_position": event.get("id")}
            event = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        event[name] = value.removeprefix(" ")
    raise AssertionError("the stream ended")


async def test_a_webhook_call_is_tailed_live_then_listed_and_exported(
    empty_database: ScratchDatabase,
) -> None:
    from tests.e2e.test_cli_and_server import served

    url = empty_database.url
    key = _demo_key(url)
    async with local_http_server() as receiver:
        with served(url, CASEDESK_OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8") as base:
            http = _setup(base, key)
            hook = http.post(
                "/api/v1/webhooks",
                json={"name": "r", "url": f"{receiver.url}/in?token=s3cret", "events": ["*"]},
            ).json()
            headers = {"Authorization": f"Bearer {key}"}
            async with (
                httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client,
                client.stream("GET", "/api/v1/traces/stream", params={"status": "2xx"}) as live,
            ):
                assert live.status_code == 200
                assert live.headers["content-type"].startswith("text/event-stream")
                lines = live.aiter_lines()
                created = await client.post(
                    "/api/v1/cases", json={"template": "q", "title": "traced"}
                )
                assert created.status_code == 201
                first = await asyncio.wait_for(_next_trace(lines), 20)
            assert first["connector"] == "webhooks"
            assert first["status"] == 200
            assert "s3cret" not in first["url"]
            deadline = time.monotonic() + 20
            while True:  # persisted and listed: from the hot tier or SQL, the same
                listed = http.get("/api/v1/traces", params={"connection_id": hook["id"]}).json()
                if any(item["id"] == first["id"] for item in listed["items"]):
                    break
                assert time.monotonic() < deadline, "the traced call was not listed"
                await asyncio.sleep(0.2)
            record = http.get(f"/api/v1/traces/{first['id']}").json()
            sent = dict(record["request"]["headers"])
            assert sent["webhook-signature"] == "[REDACTED]"
            har = http.get("/api/v1/traces.har", params={"connection_id": hook["id"]}).json()
            har_validator().validate(har)
            assert first["id"] in {e["_casedesk"]["record_id"] for e in har["log"]["entries"]}
