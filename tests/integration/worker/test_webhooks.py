"""Outbound webhooks: signed deliveries to a real HTTP receiver, retries, the log, redelivery."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from casedesk.bootstrap import Container
from casedesk.domain.identity.roles import Role
from casedesk.domain.webhooks.deliveries import DELIVER, deliver_key
from casedesk.domain.webhooks.subscriptions import RETRY_SCHEDULE
from casedesk.integrations.hub import Hub
from casedesk.store.models import ScheduledJob
from casedesk.traces.buffer import TraceBuffer
from casedesk.worker.scheduler import Scheduler
from casedesk.worker.webhooks import Webhooks
from tests.conftest import Tenants, settings_for
from tests.support.cases import Desk
from tests.support.delivery import delivering_to
from tests.support.http_server import LocalHTTPServer, Received, Reply, local_http_server

Settle = Callable[[], Awaitable[None]]
Deliver = Callable[[timedelta], Awaitable[None]]


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[LocalHTTPServer]:
    async with local_http_server() as server:
        yield server


@pytest.fixture
def inbox(receiver: LocalHTTPServer) -> LocalHTTPServer:
    receiver.reset()
    return receiver


@pytest.fixture
def traces() -> TraceBuffer:
    return TraceBuffer(1000)


@pytest.fixture
async def sender(
    container: Container, backend_url: str, traces: TraceBuffer
) -> AsyncIterator[Webhooks]:
    """The webhook sender with a hub that may reach the receiver on loopback."""
    settings = settings_for(backend_url, outbound_allowed_networks="127.0.0.0/8")
    hub = Hub(settings, recorder=traces)
    # listening_ttl=0: tests save webhooks between events and want them applied at once
    yield Webhooks(container.database, hub, container.box, listening_ttl=0)
    await hub.aclose()


@pytest.fixture
async def settle(container: Container, sender: Webhooks) -> AsyncIterator[Settle]:
    async with delivering_to(container, sender.group()) as settle:
        yield settle


@pytest.fixture
def deliver(container: Container, sender: Webhooks, monkeypatch: pytest.MonkeyPatch) -> Deliver:
    """Run the delivery jobs due ``ahead`` from now (the worker's clock moved forward)."""

    async def run(ahead: timedelta) -> None:
        monkeypatch.setattr("casedesk.store.jobs.utcnow", lambda: datetime.now(UTC) + ahead)
        scheduler = Scheduler(container.database, {DELIVER: sender.run_job})
        while await scheduler.run_once():
            pass

    return run


async def _webhook(desk: Desk, url: str, **spec: Any) -> dict[str, Any]:
    body = {"name": "crm", "url": url, "events": ["case.created"]} | spec
    response = await desk.http.post("/api/v1/webhooks", json=body, headers=desk.headers)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def _deliveries(desk: Desk, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
    response = await desk.http.get(
        f"/api/v1/webhooks/{webhook_id}/deliveries", params=params, headers=desk.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _detail(desk: Desk, delivery_id: str) -> dict[str, Any]:
    response = await desk.http.get(
        f"/api/v1/webhook-deliveries/{delivery_id}", headers=desk.headers
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _verified(secret: str, request: Received) -> dict[str, Any]:
    """Checked by the Standard Webhooks reference library, not by our own code."""
    document: dict[str, Any] = Webhook(secret).verify(request.body, dict(request.headers))
    return document


async def test_a_subscribed_event_is_posted_signed_as_standard_webhooks_say(
    desk: Desk, inbox: LocalHTTPServer, settle: Settle, deliver: Deliver, traces: TraceBuffer
) -> None:
    hook = await _webhook(desk, f"{inbox.url}/hooks/crm")
    assert hook["secret"].startswith("whsec_")
    case = await desk.new_case(title="Signed")
    await desk.act(case["id"], "start")
    await settle()
    await deliver(timedelta(0))
    [request] = inbox.requests_to("/hooks/crm")
    event = _verified(hook["secret"], request)
    assert event["type"] == "case.created"
    assert event["subject"] == case["id"]
    assert event["data"]["case"]["title"] == "Signed"
    assert request.headers["webhook-id"] == event["id"]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["traceparent"].startswith("00-")
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43).verify(request.body, dict(request.headers))
    [delivery] = await _deliveries(desk, hook["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
        "succeeded",
        1,
        200,
    )
    # The call went through the hub, which traced it with the signature redacted.
    [record] = [r for r in traces.drain(1000) if r.execution_id == delivery["id"]]
    assert (record.connector, record.action, record.status) == ("webhooks", "deliver", 200)
    sent = dict(record.request_headers)
    assert sent["webhook-id"] == event["id"]
    assert sent["webhook-signature"] != request.headers["webhook-signature"]
    assert record.trace_id == request.headers["traceparent"].split("-")[1]


async def test_families_and_a_star_choose_events(
    desk: Desk, inbox: LocalHTTPServer, settle: Settle, deliver: Deliver
) -> None:
    await _webhook(desk, f"{inbox.url}/family", events=["comment.*"])
    await _webhook(desk, f"{inbox.url}/all", events=["*"])
    await _webhook(desk, f"{inbox.url}/none", events=[])
    case = await desk.new_case()
    await desk.http.post(
        f"/api/v1/cases/{case['id']}/comments", json={"body": "hi"}, headers=desk.headers
    )
    await settle()
    await deliver(timedelta(0))
    family = [orjson.loads(r.body)["type"] for r in inbox.requests_to("/family")]
    everything = {orjson.loads(r.body)["type"] for r in inbox.requests_to("/all")}
    assert family == ["comment.added"]
    assert {"case.created", "task.created", "comment.added"} <= everything
    assert inbox.requests_to("/none") == []


async def test_a_failing_receiver_is_retried_on_the_schedule_then_given_up(
    desk: Desk, inbox: LocalHTTPServer, settle: Settle, deliver: Deliver
) -> None:
    inbox.script("/down", Reply(503, b"maintenance"))
    hook = await _webhook(desk, f"{inbox.url}/down")
    await desk.new_case()
    await settle()
    await deliver(timedelta(0))
    [delivery] = await _deliveries(desk, hook["id"])
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    waited = datetime.fromisoformat(delivery["next_attempt_at"]) - datetime.fromisoformat(
        delivery["created_at"]
    )
    assert RETRY_SCHEDULE[1] <= waited < RETRY_SCHEDULE[1] + timedelta(seconds=5)
    elapsed = timedelta(0)
    for wait in RETRY_SCHEDULE[1:]:
        elapsed += wait
        await deliver(elapsed + timedelta(seconds=1))
    assert sum(RETRY_SCHEDULE, timedelta(0)) > timedelta(hours=24)
    detail = await _detail(desk, delivery["id"])
    assert detail["status"] == "failed"
    assert detail["attempts"] == len(RETRY_SCHEDULE)
    log = detail["attempt_log"]
    assert [a["number"] for a in log] == list(range(1, len(RETRY_SCHEDULE) + 1))
    assert {a["status_code"] for a in log} == {503}
    assert log[0]["response_body"] == "maintenance"
    ids = {r.headers["webhook-id"] for r in inbox.requests_to("/down")}
    assert ids == {detail["message_id"]}
    assert len(inbox.requests_to("/down")) == len(RETRY_SCHEDULE)


async def test_a_receiver_that_recovers_gets_the_message_once(
    desk: Desk, inbox: LocalHTTPServer, settle: Settle, deliver: Deliver
) -> None:
    inbox.script("/flaky", Reply(500), Reply(204, b""))
    hook = await _webhook(desk, f"{inbox.url}/flaky")
    await desk.new_case()
    await settle()
    await deliver(timedelta(0))
    await deliver(timedelta(seconds=6))
    await deliver(timedelta(hours=30))
    [delivery] = await _deliveries(desk, hook["id"])
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 2)
    assert len(inbox.requests_to("/flaky")) == 2


async def _claim_delivery_job(container: Container, owner: str, lease: timedelta) -> ScheduledJob:
    """Claim the due webhook job as worker ``owner`` would; other tests' due jobs go back."""
    async with container.unit_of_work() as uow:
        await uow.begin_write()
        claimed = await uow.jobs.claim(owner, limit=100, lease=lease)
        [job] = [j for j in claimed if j.kind == DELIVER]
        await uow.jobs.hand_back([j.id for j in claimed if j.id != job.id], owner)
        await uow.commit()
    return job


async def test_a_stale_second_runner_of_an_attempt_sends_nothing(
    desk: Desk, inbox: LocalHTTPServer, settle: Settle, sender: Webhooks, container: Container
) -> None:
    """Worker one claimed the attempt but waited past its lease; worker two took it over.
    Whether one runs its stale copy before two sends or after, only two's POST goes out."""
    from casedesk.store.jobs import LeaseLost

    inbox.script("/stale", Reply(503))  # the delivery stays pending, waiting for attempt 2
    hook = await _webhook(desk, f"{inbox.url}/stale")
    await desk.new_case()
    await settle()
    stale = await _claim_delivery_job(container, "one", timedelta(seconds=-1))
    current = await _claim_delivery_job(container, "two", timedelta(seconds=60))
    assert stale.id == current.id
    with pytest.raises(LeaseLost):
        await sender.run_job(stale)
    assert inbox.requests_to("/stale") == []
    await sender.run_job(current)
    await sender.run_job(stale)  # after two made the attempt: nothing more
    await sender.run_job(current)  # the holder running it again (a crash before finishing)
    assert len(inbox.requests_to("/stale")) == 1
    [delivery] = await _deliveries(desk, hook["id"])
    detail = await _detail(desk, delivery["id"])
    assert (detail["status"], detail["attempts"]) == ("pending", 1)
    assert [a["number"] for a in detail["attempt_log"]] == [1]
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        assert await uow.jobs.finish(current.id, "two", error=None, retry_at=None)
        await uow.jobs.cancel(deliver_key(uuid.UUID(delivery["id"]), "2"))  # not for others
        await uow.commit()


async def test_an_internal_address_at_delivery_is_an_attempt_with_an_error(
    desk: Desk, inbox: LocalHTTPServer, settle: Settle, deliver: Deliver, container: Container
) -> None:
    hook = await _webhook(desk, f"{inbox.url}/hook")
    # As if its name had come to resolve inside: the hub refuses it when it connects.
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        (await uow.webhooks.get(uuid.UUID(hook["id"]))).url = "http://10.255.255.1:9/hook"
        await uow.commit()
    await desk.new_case()
    await settle()
    await deliver(timedelta(0))
    [delivery] = await _deliveries(desk, hook["id"])
    detail = await _detail(desk, delivery["id"])
    [attempt] = detail["attempt_log"]
    assert attempt["status_code"] is None
    assert "10.255.255.1" in attempt["error"]
    assert detail["status"] == "pending"


async def test_redeliver_sends_a_finished_delivery_again_with_the_same_id(
    desk: Desk, inbox: LocalHTTPServer, settle: Settle, deliver: Deliver
) -> None:
    hook = await _webhook(desk, f"{inbox.url}/again")
    await desk.new_case()
    await settle()
    await deliver(timedelta(0))
    [delivery] = await _deliveries(desk, hook["id"], status="succeeded")
    url = f"/api/v1/webhook-deliveries/{delivery['id']}/redeliver"
    accepted = await desk.http.post(url, headers=desk.headers)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "pending"
    busy = await desk.http.post(url, headers=desk.headers)
    assert busy.status_code == 409
    await deliver(timedelta(0))
    detail = await _detail(desk, delivery["id"])
    assert detail["status"] == "succeeded"
    assert [a["manual"] for a in detail["attempt_log"]] == [False, True]
    first, second = inbox.requests_to("/again")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body


async def test_a_rule_sends_the_case_to_a_webhook(
    desk: Desk, inbox: LocalHTTPServer, container: Container, sender: Webhooks
) -> None:
    from casedesk.worker.automation import Automation

    hook = await _webhook(desk, f"{inbox.url}/rule", events=[])
    rule = await desk.http.post(
        "/api/v1/rules",
        json={
            "name": "escalate to crm",
            "on": ["case.created"],
            "conditions": {"field": "case.priority", "op": "eq", "value": "urgent"},
            "actions": [{"type": "send_webhook", "webhook_id": hook["id"]}],
        },
        headers=desk.headers,
    )
    assert rule.status_code == 201, rule.text
    automation = Automation(container.database, container.extensions, rules_ttl=0).group()
    async with delivering_to(container, automation) as settle:
        urgent = await desk.new_case(priority="urgent")
        await desk.new_case()
        await settle()
    scheduler = Scheduler(container.database, {DELIVER: sender.run_job})
    while await scheduler.run_once():
        pass
    [request] = inbox.requests_to("/rule")
    message = _verified(hook["secret"], request)
    assert message["type"] == "automation.webhook"
    assert message["data"]["case"]["id"] == urgent["id"]
    assert message["data"]["operator"]["name"] == "escalate to crm"
    history = await desk.http.get(f"/api/v1/cases/{urgent['id']}/history", headers=desk.headers)
    assert "webhook.queued" in [h["code"] for h in history.json()["items"]]


async def test_a_rule_naming_a_webhook_that_does_not_exist_is_422(
    desk: Desk, tenants: Tenants, inbox: LocalHTTPServer
) -> None:
    other = await tenants.create()
    foreign = await desk.http.post(
        "/api/v1/webhooks",
        json={"name": "theirs", "url": f"{inbox.url}/x"},
        headers=other.headers,
    )
    for webhook_id in (str(uuid.uuid4()), foreign.json()["id"]):
        response = await desk.http.post(
            "/api/v1/rules",
            json={
                "name": "r",
                "on": ["case.created"],
                "actions": [{"type": "send_webhook", "webhook_id": webhook_id}],
            },
            headers=desk.headers,
        )
        assert response.status_code == 422, response.text
        assert "actions.0.webhook_id" in response.text


async def test_test_ping_rotate_and_a_disabled_webhook(
    desk: Desk, inbox: LocalHTTPServer, settle: Settle, deliver: Deliver
) -> None:
    hook = await _webhook(desk, f"{inbox.url}/ping")
    rotated = await desk.http.post(
        f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=desk.headers
    )
    new_secret = rotated.json()["secret"]
    assert new_secret != hook["secret"]
    ping = await desk.http.post(f"/api/v1/webhooks/{hook['id']}/test", headers=desk.headers)
    assert ping.status_code == 202, ping.text
    await deliver(timedelta(0))
    [request] = inbox.requests_to("/ping")
    assert _verified(new_secret, request)["type"] == "webhook.test"
    changed = await desk.http.put(
        f"/api/v1/webhooks/{hook['id']}",
        json={"name": "crm", "url": f"{inbox.url}/ping", "events": ["*"], "enabled": False},
        headers=desk.headers,
    )
    assert changed.json()["enabled"] is False
    await desk.new_case()
    await settle()
    await deliver(timedelta(0))
    assert len(inbox.requests_to("/ping")) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "https://192.168.1.10/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_an_internal_address_is_refused_when_the_webhook_is_saved(
    desk: Desk, url: str, inbox: LocalHTTPServer
) -> None:
    body = {"name": "crm", "url": url}
    created = await desk.http.post("/api/v1/webhooks", json=body, headers=desk.headers)
    assert created.status_code == 422, created.text
    assert created.json()["field"] == "url"
    assert "CASEDESK_OUTBOUND_ALLOWED_NETWORKS" in created.json()["detail"]
    hook = await _webhook(desk, f"{inbox.url}/ok")
    moved = await desk.http.put(f"/api/v1/webhooks/{hook['id']}", json=body, headers=desk.headers)
    assert moved.status_code == 422, moved.text


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "https://user:pw@example.com/x"}, "url"),
        ({"events": ["case.exploded"]}, "events"),
        ({"name": ""}, "name"),
    ],
)
async def test_a_bad_webhook_is_422_naming_the_field(
    desk: Desk, change: dict[str, Any], named: str
) -> None:
    body = {"name": "crm", "url": "https://example.com/hook"} | change
    response = await desk.http.post("/api/v1/webhooks", json=body, headers=desk.headers)
    assert response.status_code == 422, response.text
    assert named in response.text


async def test_webhooks_are_for_admins_and_other_tenants_see_nothing(
    desk: Desk,
    tenants: Tenants,
    client: httpx.AsyncClient,
    settle: Settle,
    deliver: Deliver,
    inbox: LocalHTTPServer,
) -> None:
    hook = await _webhook(desk, f"{inbox.url}/private")
    await desk.new_case()
    await settle()
    await deliver(timedelta(0))
    [delivery] = await _deliveries(desk, hook["id"])
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    assert (await client.get("/api/v1/webhooks", headers=agent.headers)).status_code == 403
    other = await tenants.create()
    for url in (
        f"/api/v1/webhooks/{hook['id']}",
        f"/api/v1/webhooks/{hook['id']}/deliveries",
        f"/api/v1/webhook-deliveries/{delivery['id']}",
    ):
        assert (await client.get(url, headers=other.headers)).status_code == 404, url
    redeliver = f"/api/v1/webhook-deliveries/{delivery['id']}/redeliver"
    assert (await client.post(redeliver, headers=other.headers)).status_code == 404
    assert (await client.get("/api/v1/webhooks", headers=other.headers)).json() == []


async def test_the_secret_is_stored_sealed(desk: Desk, container: Container) -> None:
    hook = await _webhook(desk, "https://example.com/hook")
    async with container.unit_of_work(desk.tenant.id) as uow:
        stored = await uow.webhooks.get(uuid.UUID(hook["id"]))
        jobs = await uow.session.scalars(select(ScheduledJob).where(ScheduledJob.kind == DELIVER))
        assert list(jobs.all()) == []
    assert hook["secret"] not in stored.secret_sealed
    assert container.box.open(stored.secret_sealed) == hook["secret"]


async def _webhook_now(desk: Desk, webhook_id: str) -> dict[str, Any]:
    response = await desk.http.get(f"/api/v1/webhooks/{webhook_id}", headers=desk.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def _failing_for(container: Container, desk: Desk, webhook_id: str, days: float) -> None:
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        hook = await uow.webhooks.get(uuid.UUID(webhook_id))
        hook.failing_since = datetime.now(UTC) - timedelta(days=days)
        await uow.commit()


async def test_an_endpoint_failing_for_days_is_disabled_until_an_admin_enables_it(
    desk: Desk, inbox: LocalHTTPServer, settle: Settle, deliver: Deliver, container: Container
) -> None:
    inbox.script("/gone", Reply(410, b"gone"))
    hook = await _webhook(desk, f"{inbox.url}/gone")
    await desk.new_case()
    await settle()
    await deliver(timedelta(0))
    first = await _webhook_now(desk, hook["id"])
    assert first["enabled"] is True
    assert first["failing_since"] is not None

    await _failing_for(container, desk, hook["id"], days=4.9)  # not long enough yet
    await desk.new_case()
    await settle()
    await deliver(timedelta(0))
    assert (await _webhook_now(desk, hook["id"]))["enabled"] is True

    await _failing_for(container, desk, hook["id"], days=5.1)
    await desk.new_case()
    await settle()
    await deliver(timedelta(0))
    disabled = await _webhook_now(desk, hook["id"])
    assert disabled["enabled"] is False
    assert disabled["disabled_at"] is not None
    assert "every attempt failed since" in disabled["disabled_reason"]
    await deliver(timedelta(hours=30))  # the deliveries still waiting give up
    deliveries = await _deliveries(desk, hook["id"])
    assert [d["status"] for d in deliveries] == ["failed"] * 3
    assert {d["last_error"] for d in deliveries} == {
        "not retried: the webhook is disabled",  # the attempt that disabled it
        "the webhook is disabled",  # the two that were still waiting
    }
    tried = len(inbox.requests_to("/gone"))
    await desk.new_case()
    await settle()
    await deliver(timedelta(hours=31))
    assert len(await _deliveries(desk, hook["id"])) == 3  # a disabled webhook gets nothing new
    assert len(inbox.requests_to("/gone")) == tried

    inbox.script("/gone", Reply(204, b""))
    body = {"name": "crm", "url": f"{inbox.url}/gone", "events": ["case.created"], "enabled": True}
    enabled = await desk.http.put(f"/api/v1/webhooks/{hook['id']}", json=body, headers=desk.headers)
    assert enabled.status_code == 200, enabled.text
    fresh = enabled.json()
    assert (fresh["enabled"], fresh["failing_since"], fresh["disabled_reason"]) == (
        True,
        None,
        None,
    )
    await desk.new_case()
    await settle()
    await deliver(timedelta(hours=32))
    after = await _deliveries(desk, hook["id"])
    assert [d["status"] for d in after] == ["succeeded"] + ["failed"] * 3  # newest first


async def test_a_success_ends_the_run_of_failures_and_an_admin_disable_says_so(
    desk: Desk, inbox: LocalHTTPServer, settle: Settle, deliver: Deliver, container: Container
) -> None:
    inbox.script("/wobbly", Reply(500), Reply(204, b""))
    hook = await _webhook(desk, f"{inbox.url}/wobbly")
    await desk.new_case()
    await settle()
    await deliver(timedelta(0))
    assert (await _webhook_now(desk, hook["id"]))["failing_since"] is not None
    await _failing_for(container, desk, hook["id"], days=1)
    await deliver(timedelta(seconds=6))
    assert (await _webhook_now(desk, hook["id"]))["failing_since"] is None

    body = {"name": "crm", "url": f"{inbox.url}/wobbly", "enabled": False}
    paused = await desk.http.put(f"/api/v1/webhooks/{hook['id']}", json=body, headers=desk.headers)
    assert paused.json()["enabled"] is False
    assert paused.json()["disabled_reason"] == "disabled by an admin"
