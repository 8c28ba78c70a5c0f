"""What a webhook attempt keeps of the receiver's answer, and of a URL that is a credential."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Sequence
from ipaddress import ip_address
from typing import Any

import pytest

from casedesk.bootstrap import Container
from casedesk.domain.webhooks.deliveries import DELIVER
from casedesk.integrations.guard import IPAddress, SystemResolver
from casedesk.integrations.hub import Hub
from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.redaction import REDACTED_ENCODED
from casedesk.worker.scheduler import Scheduler
from casedesk.worker.webhooks import RESPONSE_KEPT, RESPONSE_READ, Webhooks
from tests.conftest import settings_for
from tests.support.cases import Desk
from tests.support.http_server import LocalHTTPServer, Reply, local_http_server


class SlackOnThisMachine:
    """hooks.slack.com is 127.0.0.1; any other name or address as the system says."""

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        if host == "hooks.slack.com":
            return [ip_address("127.0.0.1")]
        return await SystemResolver().resolve(host, port)


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[LocalHTTPServer]:
    async with local_http_server() as server:
        yield server


@pytest.fixture
def traces() -> TraceBuffer:
    return TraceBuffer(1000)


@pytest.fixture
async def sender(
    container: Container, backend_url: str, traces: TraceBuffer
) -> AsyncIterator[Webhooks]:
    """A webhook sender whose hub finds hooks.slack.com on this machine."""
    settings = settings_for(backend_url, outbound_allowed_networks="127.0.0.0/8")
    hub = Hub(settings, recorder=traces, resolver=SlackOnThisMachine())
    # listening_ttl=0: tests save webhooks between events and want them applied at once
    yield Webhooks(container.database, hub, container.box, listening_ttl=0)
    await hub.aclose()


async def _ping(desk: Desk, container: Container, sender: Webhooks, url: str) -> dict[str, Any]:
    """Save a webhook, send it a test message now, and return the delivery's detail."""
    made = await desk.http.post(
        "/api/v1/webhooks", json={"name": "chat", "url": url}, headers=desk.headers
    )
    assert made.status_code == 201, made.text
    ping = await desk.http.post(f"/api/v1/webhooks/{made.json()['id']}/test", headers=desk.headers)
    assert ping.status_code == 202, ping.text
    scheduler = Scheduler(container.database, {DELIVER: sender.run_job})
    while await scheduler.run_once():
        pass
    detail = await desk.http.get(
        f"/api/v1/webhook-deliveries/{ping.json()['id']}", headers=desk.headers
    )
    assert detail.status_code == 200, detail.text
    found: dict[str, Any] = detail.json()
    return found


@pytest.mark.parametrize(
    ("reply", "kept"),
    [
        # A declared length over the limit: nothing is read, the status still counts.
        (Reply(200, b"a" * (RESPONSE_READ * 4)), None),
        # Streamed without a length: read up to the limit, and the first part kept.
        (Reply(202, b"a" * (RESPONSE_READ * 4), chunks=64, body_delay=0.001), "a" * RESPONSE_KEPT),
    ],
)
async def test_a_2xx_answer_longer_than_is_read_still_delivers_the_message(
    desk: Desk,
    container: Container,
    sender: Webhooks,
    receiver: LocalHTTPServer,
    reply: Reply,
    kept: str | None,
) -> None:
    receiver.script("/chatty", reply)

    delivery = await _ping(desk, container, sender, f"{receiver.url}/chatty")

    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 1)
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] == reply.status
    assert attempt["response_body"] == kept
    assert f"over the limit of {RESPONSE_READ} bytes" in attempt["error"]


async def test_a_slack_style_url_is_redacted_in_the_attempt_log_and_the_trace(
    desk: Desk, container: Container, sender: Webhooks, traces: TraceBuffer
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"http://hooks.slack.com:{closed_port}/services/T0001/B0002/QQ-token-QQ"

    delivery = await _ping(desk, container, sender, url)

    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] is None
    assert f"/services/T0001/B0002/{REDACTED_ENCODED} failed" in attempt["error"]
    assert "QQ" not in attempt["error"]
    assert "QQ" not in (delivery["last_error"] or "")
    [record] = [r for r in traces.drain(1000) if r.execution_id == delivery["id"]]
    assert record.url.endswith(f"/services/T0001/B0002/{REDACTED_ENCODED}")
    assert "QQ" not in repr(record)
