"""Workflows over the API: drafts, publishing with every problem named, versions, the one
subscription each keeps, turning it on and off, executions and subscriptions to read."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from casedesk.bootstrap import Container
from casedesk.domain.identity.roles import Role
from casedesk.platform.instant import PROCESS
from casedesk.platform.intake import RUN
from casedesk.platform.polling import poll_key
from casedesk.store.models import ScheduledJob
from tests.conftest import Tenants
from tests.integration.platform.test_runner import CRM
from tests.support.cases import Desk, make_desk
from tests.support.instant import run_jobs
from tests.support.workflows import (
    OPEN_CASE,
    add_connection,
    add_connector,
    delivery,
    execution,
    fire_items,
    publish,
    published,
    quick_runner,
    run_due,
    save,
    webhook_workflow,
)


def _rest_workflow(code: str, connection: str, **settings: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"Poll {code}",
        "trigger": {
            "connector": "rest",
            "trigger": "new_item",
            "connection_id": connection,
            "settings": {"path": "/tickets"} | settings,
        },
        "steps": [OPEN_CASE | {"title": "{{ trigger.title }}"}],
    }


async def _problems(desk: Desk, code: str) -> list[tuple[str, str]]:
    response = await desk.http.post(f"/api/v1/workflows/{code}/publish", headers=desk.headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["type"] == "/problems/invalid-input"
    return sorted((error["field"], error["type"]) for error in body["errors"])


async def test_a_draft_is_kept_with_its_problems_and_replaced_by_its_code(desk: Desk) -> None:
    body = webhook_workflow("drafty", [OPEN_CASE | {"template": "later"}])
    first = await save(desk, body)
    assert first["latest_version"] == 0
    assert first["subscription"] is None
    assert [(p["field"], p["type"]) for p in first["draft_problems"]] == [
        ("steps.0.template", "unknown_reference")
    ]
    fixed = await save(desk, body | {"name": "Fixed", "steps": [OPEN_CASE]})
    assert fixed["name"] == "Fixed"
    assert fixed["draft_problems"] == []
    assert fixed["draft"]["steps"][0]["template"] == "question"
    listed = await desk.http.get("/api/v1/workflows", headers=desk.headers)
    assert [w["code"] for w in listed.json()] == ["drafty"]
    read = await desk.http.get("/api/v1/workflows/drafty", headers=desk.headers)
    assert read.json()["draft"] == fixed["draft"]


async def test_publishing_refuses_every_bad_reference_at_once_each_at_its_path(
    desk: Desk, container: Container
) -> None:
    await add_connector(container, desk.tenant.id, CRM)
    crm = await add_connection(container, desk.tenant.id, "crm", {"base_url": "http://x.test"})
    body = {
        "code": "broken",
        "name": "Broken",
        "trigger": {
            "connector": "rest",
            "trigger": "new_item",
            "connection_id": crm,
            "settings": {"interval_seconds": 5},
        },
        "filter": {"all": [{"field": "case.priority", "op": "eq", "value": "high"}]},
        "steps": [
            OPEN_CASE
            | {
                "template": "nope",
                "queue": "nowhere",
                "priority": "extreme",
                "title": "{{ steps.later.id }}",
                "description": "{{ triger.body }}",
            },
            {
                "name": "act",
                "kind": "apply_action",
                "case": "{{ steps.open.id }}",
                "action": "teleport",
            },
            {"name": "miss", "kind": "connector_action", "connection_id": crm, "action": "nope"},
            {
                "name": "log",
                "kind": "connector_action",
                "connection_id": crm,
                "action": "log",
                "input": {"count": "many"},
            },
            {"name": "call", "kind": "http_request", "request": {"path": "/relative"}},
            {
                "name": "note",
                "kind": "add_comment",
                "case": "{{ steps.ghost.id }}",
                "body": "hi",
                "when": {"field": "steps.later.id", "op": "is_empty"},
            },
            {
                "name": "gone",
                "kind": "connector_action",
                "connection_id": str(uuid.uuid4()),
                "action": "log",
            },
            {
                "name": "later",
                "kind": "add_comment",
                "case": "{{ steps.open.id }}",
                "body": "{{ steps.later.id }}",
            },
        ],
    }
    saved = await save(desk, body)
    problems = await _problems(desk, "broken")
    assert problems == [
        ("filter.all.0.field", "unknown_field"),
        ("steps.0.description", "unknown_name"),
        ("steps.0.priority", "invalid_value"),
        ("steps.0.queue", "unknown_reference"),
        ("steps.0.template", "unknown_reference"),
        ("steps.0.title", "unknown_step"),
        ("steps.1.action", "unknown_reference"),
        ("steps.2.action", "unknown_reference"),
        ("steps.3.input.count", "invalid_value"),
        ("steps.3.input.subject", "invalid_value"),
        ("steps.4.request.path", "invalid_value"),
        ("steps.5.case", "unknown_step"),
        ("steps.5.when.field", "unknown_step"),
        ("steps.6.connection_id", "unknown_reference"),
        ("steps.7.body", "unknown_step"),
        ("trigger.connection_id", "wrong_connector"),
        ("trigger.settings.interval_seconds", "invalid_setting"),
        ("trigger.settings.interval_seconds", "invalid_value"),
        ("trigger.settings.path", "invalid_value"),
    ]
    assert sorted((p["field"], p["type"]) for p in saved["draft_problems"]) == problems
    read = await desk.http.get("/api/v1/workflows/broken", headers=desk.headers)
    assert read.json()["latest_version"] == 0


async def test_publishing_refuses_an_unknown_connector_trigger_or_connection(
    desk: Desk, container: Container
) -> None:
    await save(
        desk,
        webhook_workflow("w1", [OPEN_CASE])
        | {"trigger": {"connector": "nosuch", "trigger": "delivery"}},
    )
    assert await _problems(desk, "w1") == [("trigger.connector", "unknown_reference")]
    await save(
        desk,
        webhook_workflow("w2", [OPEN_CASE])
        | {"trigger": {"connector": "webhook", "trigger": "nosuch"}},
    )
    assert await _problems(desk, "w2") == [("trigger.trigger", "unknown_reference")]
    await save(desk, _rest_workflow("w3", str(uuid.uuid4())))
    assert await _problems(desk, "w3") == [("trigger.connection_id", "unknown_reference")]
    await save(
        desk,
        _rest_workflow("w4", "")
        | {"trigger": {"connector": "rest", "trigger": "new_item", "settings": {"path": "/x"}}},
    )
    assert await _problems(desk, "w4") == [("trigger.connection_id", "missing")]
    await save(
        desk,
        webhook_workflow("w5", [OPEN_CASE])
        | {"trigger": {"connector": "webhook", "trigger": "delivery", "settings": {"bogus": 1}}},
    )
    assert await _problems(desk, "w5") == [("trigger.settings", "invalid_value")]


async def test_action_input_that_is_known_only_when_the_step_runs_is_not_refused(
    desk: Desk, container: Container
) -> None:
    await add_connector(container, desk.tenant.id, CRM)
    crm = await add_connection(container, desk.tenant.id, "crm", {"base_url": "http://x.test"})
    log = {
        "name": "log",
        "kind": "connector_action",
        "connection_id": crm,
        "action": "log",
        "input": {"subject": "{{ trigger.body.subject }}", "count": "{{ trigger.body.count }}"},
    }
    flow = await published(desk, webhook_workflow("dynamic", [log]))
    assert flow["version"] == 1


async def test_publishing_makes_immutable_versions_and_an_unchanged_draft_answers_the_latest(
    desk: Desk,
) -> None:
    body = webhook_workflow("versioned", [OPEN_CASE])
    await save(desk, body)
    first = await desk.http.post("/api/v1/workflows/versioned/publish", headers=desk.headers)
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["unchanged"]) == (1, False)
    again = await desk.http.post("/api/v1/workflows/versioned/publish", headers=desk.headers)
    assert again.status_code == 200
    assert (again.json()["version"], again.json()["unchanged"]) == (1, True)
    await save(desk, body | {"steps": [OPEN_CASE | {"title": "New: {{ trigger.body.subject }}"}]})
    second = await desk.http.post("/api/v1/workflows/versioned/publish", headers=desk.headers)
    assert second.status_code == 201
    assert second.json()["version"] == 2
    assert second.json()["subscription"]["id"] == first.json()["subscription"]["id"]
    old = await desk.http.get("/api/v1/workflows/versioned/versions/1", headers=desk.headers)
    assert old.json()["definition"]["steps"][0]["title"] == "{{ trigger.body.subject }}"
    read = (await desk.http.get("/api/v1/workflows/versioned", headers=desk.headers)).json()
    assert [v["version"] for v in read["versions"]] == [1, 2]
    missing = await desk.http.get("/api/v1/workflows/versioned/versions/3", headers=desk.headers)
    assert missing.status_code == 404


async def _subscription_row(
    container: Container, tenant_id: uuid.UUID, subscription_id: str
) -> Any:
    async with container.unit_of_work(tenant_id) as uow:
        return await uow.subscriptions.get(uuid.UUID(subscription_id))


async def test_republishing_keeps_the_subscription_and_its_cursor_until_the_source_changes(
    desk: Desk, container: Container
) -> None:
    connection = await add_connection(
        container, desk.tenant.id, "rest", {"base_url": "http://source.test"}
    )
    flow = await published(desk, _rest_workflow("polled", connection))
    subscription_id = flow["subscription"]["id"]
    assert flow["subscription"]["kind"] == "polling"
    # A poll has run: it set a cursor and saw an item, and one item waits to run.
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        subscription = await uow.subscriptions.get(uuid.UUID(subscription_id))
        subscription.cursor = {"value": "since-42"}
        await uow.commit()
    [waiting] = await fire_items(container, desk.tenant.id, subscription_id, delivery("seen-1"))

    edited = _rest_workflow("polled", connection, query={"state": "open"})
    edited["steps"] = [OPEN_CASE | {"name": "opened", "title": "v2 {{ trigger.title }}"}]
    await save(desk, edited)
    republished = await publish(desk, "polled")
    assert republished["version"] == 2
    assert republished["subscription"]["id"] == subscription_id
    assert republished["subscription"]["cursor"] == {"set": True, "preview": "since-42"}
    kept = await _subscription_row(container, desk.tenant.id, subscription_id)
    assert kept.settings == {"path": "/tickets", "query": {"state": "open"}}
    assert await fire_items(container, desk.tenant.id, subscription_id, delivery("seen-1")) == []
    [later] = await fire_items(container, desk.tenant.id, subscription_id, delivery("new-1"))
    # Each execution runs the version it was queued for.
    await run_due(quick_runner(container), container)
    assert [s["name"] for s in (await execution(desk, waiting.id))["steps"]] == ["open"]
    assert [s["name"] for s in (await execution(desk, later.id))["steps"]] == ["opened"]

    other = await add_connection(
        container, desk.tenant.id, "rest", {"base_url": "http://elsewhere.test"}
    )
    await save(desk, edited | {"trigger": edited["trigger"] | {"connection_id": other}})
    moved = await publish(desk, "polled")
    assert moved["subscription"]["id"] == subscription_id
    assert moved["subscription"]["cursor"] == {"set": False, "preview": None}
    assert moved["subscription"]["connection_id"] == other
    again = await fire_items(container, desk.tenant.id, subscription_id, delivery("seen-1"))
    assert len(again) == 1  # another source: what the old one showed means nothing


async def _job_status(container: Container, tenant_id: uuid.UUID, key: str) -> str | None:
    async with container.unit_of_work(tenant_id) as uow:
        job = await uow.session.scalar(select(ScheduledJob).where(ScheduledJob.key == key))
    return None if job is None else job.status


async def test_enabling_and_disabling_start_and_stop_the_subscription(
    desk: Desk, container: Container
) -> None:
    connection = await add_connection(
        container, desk.tenant.id, "rest", {"base_url": "http://source.test"}
    )
    flow = await published(desk, _rest_workflow("switched", connection))
    key = poll_key(uuid.UUID(flow["subscription"]["id"]))
    assert flow["enabled"] is True
    assert await _job_status(container, desk.tenant.id, key) == "pending"
    off = await desk.http.post("/api/v1/workflows/switched/disable", headers=desk.headers)
    assert off.status_code == 200, off.text
    assert off.json()["enabled"] is False
    assert off.json()["subscription"]["status"] == "disabled"
    assert off.json()["subscription"]["enabled"] is False
    assert await _job_status(container, desk.tenant.id, key) == "cancelled"
    on = await desk.http.post("/api/v1/workflows/switched/enable", headers=desk.headers)
    assert on.json()["subscription"]["status"] == "active"
    assert await _job_status(container, desk.tenant.id, key) == "pending"
    quiet = await publish(desk, "switched", enabled=False)
    assert quiet["enabled"] is False
    assert quiet["subscription"]["status"] == "disabled"
    assert await _job_status(container, desk.tenant.id, key) == "cancelled"


async def test_a_webhook_workflow_shows_its_hook_url_to_admins_only(
    desk: Desk, tenants: Tenants
) -> None:
    flow = await published(desk, webhook_workflow("hooked", [OPEN_CASE]))
    hook_url = flow["subscription"]["hook_url"]
    assert hook_url.startswith("http://casedesk.test/hooks/")
    assert flow["subscription"]["kind"] == "instant"
    again = await publish(desk, "hooked")
    assert again["subscription"]["hook_url"] == hook_url  # the URL stays the workflow's
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    read = await desk.http.get(
        f"/api/v1/subscriptions/{flow['subscription']['id']}", headers=agent.headers
    )
    assert read.status_code == 200
    assert read.json()["hook_url"] is None
    refused = await desk.http.post("/api/v1/workflows/hooked/disable", headers=agent.headers)
    assert refused.status_code == 403
    drafted = await desk.http.post(
        "/api/v1/workflows", json=webhook_workflow("mine", [OPEN_CASE]), headers=agent.headers
    )
    assert drafted.status_code == 403


async def test_a_workflow_enabled_before_its_first_publish_follows_the_flag(desk: Desk) -> None:
    await save(desk, webhook_workflow("later-on", [OPEN_CASE]))
    off = await desk.http.post("/api/v1/workflows/later-on/disable", headers=desk.headers)
    assert off.json()["subscription"] is None
    flow = await publish(desk, "later-on")
    assert flow["enabled"] is False
    assert flow["subscription"]["status"] == "disabled"


async def test_executions_are_listed_newest_first_with_filters_and_cursor_pages(
    desk: Desk, container: Container
) -> None:
    one = await published(desk, webhook_workflow("listed-one", [OPEN_CASE]))
    two = await published(
        desk,
        webhook_workflow(
            "listed-two",
            [OPEN_CASE],
            filter={"field": "trigger.body.urgency", "op": "eq", "value": "high"},
        ),
    )
    made = await fire_items(
        container,
        desk.tenant.id,
        one["subscription"]["id"],
        *(delivery(f"a-{n}") for n in range(3)),
    )
    made += await fire_items(
        container,
        desk.tenant.id,
        two["subscription"]["id"],
        delivery("b-1", urgency="low"),
        delivery("b-2"),
    )
    await run_due(quick_runner(container), container)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await desk.http.get("/api/v1/executions", params=params, headers=desk.headers)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(e.id) for e in reversed(made)]

    async def ids(**params: Any) -> list[str]:
        found = await desk.http.get("/api/v1/executions", params=params, headers=desk.headers)
        assert found.status_code == 200, found.text
        return [item["id"] for item in found.json()["items"]]

    assert await ids(workflow="listed-two") == [str(made[4].id), str(made[3].id)]
    assert await ids(status="filtered") == [str(made[3].id)]
    assert await ids(subscription=one["subscription"]["id"], status="succeeded") == [
        str(e.id) for e in reversed(made[:3])
    ]
    assert await ids(workflow="nosuch") == []
    assert await ids(created_before="2000-01-01T00:00:00Z") == []
    assert len(await ids(created_after="2000-01-01T00:00:00+01:00")) == 5
    for bad in (
        {"status": "lost"},
        {"cursor": "garbage"},
        {"limit": 0},
        {"workflow": "A B"},
        {"subscription": "x"},
        {"created_after": "yesterday"},
        {"other": "1"},
    ):
        refused = await desk.http.get("/api/v1/executions", params=bad, headers=desk.headers)
        assert refused.status_code == 422, (bad, refused.text)


async def test_subscriptions_are_listed_with_their_state(desk: Desk, container: Container) -> None:
    first = await published(desk, webhook_workflow("sub-a", [OPEN_CASE]))
    await published(desk, webhook_workflow("sub-b", [OPEN_CASE]))
    await desk.http.post("/api/v1/workflows/sub-b/disable", headers=desk.headers)
    listed = await desk.http.get("/api/v1/subscriptions", headers=desk.headers)
    assert listed.status_code == 200
    assert [(s["workflow"], s["status"]) for s in listed.json()["items"]] == [
        ("sub-a", "active"),
        ("sub-b", "disabled"),
    ]
    active = await desk.http.get(
        "/api/v1/subscriptions", params={"status": "disabled"}, headers=desk.headers
    )
    assert [s["workflow"] for s in active.json()["items"]] == ["sub-b"]
    one = await desk.http.get(
        f"/api/v1/subscriptions/{first['subscription']['id']}", headers=desk.headers
    )
    shown = one.json()
    assert (shown["connector"], shown["trigger"], shown["kind"]) == (
        "webhook",
        "delivery",
        "instant",
    )
    assert (shown["consecutive_failures"], shown["last_error"]) == (0, None)
    assert shown["cursor"] == {"set": False, "preview": None}


async def test_another_tenants_workflows_executions_and_subscriptions_are_not_found(
    desk: Desk, container: Container, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    flow = await published(desk, webhook_workflow("private", [OPEN_CASE]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("p-1")
    )
    other = await make_desk(client, await tenants.create(), container)
    for method, path in (
        ("GET", "/api/v1/workflows/private"),
        ("POST", "/api/v1/workflows/private/publish"),
        ("POST", "/api/v1/workflows/private/enable"),
        ("GET", "/api/v1/workflows/private/versions/1"),
        ("GET", f"/api/v1/executions/{queued.id}"),
        ("POST", f"/api/v1/executions/{queued.id}/retry"),
        ("POST", f"/api/v1/executions/{queued.id}/replay"),
        ("GET", f"/api/v1/subscriptions/{flow['subscription']['id']}"),
    ):
        response = await client.request(method, path, headers=other.headers)
        assert response.status_code == 404, (path, response.text)
    listed = await client.get("/api/v1/executions", headers=other.headers)
    assert listed.json()["items"] == []
    assert (await client.get("/api/v1/subscriptions", headers=other.headers)).json()["items"] == []
    assert (await client.get("/api/v1/workflows", headers=other.headers)).json() == []


async def test_bad_workflow_input_is_a_4xx_naming_the_field(desk: Desk) -> None:
    async def refused(body: dict[str, Any]) -> dict[str, Any]:
        response = await desk.http.post("/api/v1/workflows", json=body, headers=desk.headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        answer: dict[str, Any] = response.json()
        return answer

    base = webhook_workflow("bad", [OPEN_CASE])
    nul = await refused(base | {"name": "a\x00b"})
    assert nul["errors"][0]["type"] == "string_nul"
    huge = await refused(base | {"steps": [OPEN_CASE | {"title": "x" * 5000}]})
    assert huge["errors"][0]["field"] == "steps.0.create_case.title"
    huge_form = await refused(
        base | {"steps": [OPEN_CASE | {"form": {"note": "{{ 1 }}" + "y" * 5000}}]}
    )
    assert "4096" in huge_form["errors"][0]["message"]
    unknown = await refused(base | {"steps": [{"name": "x", "kind": "launch_rocket"}]})
    assert unknown["errors"][0]["type"] == "union_tag_invalid"
    broken = await refused(base | {"steps": [OPEN_CASE | {"title": "{{ unclosed"}]})
    assert "does not compile" in broken["errors"][0]["message"]
    await refused(base | {"steps": []})
    await refused(base | {"steps": [OPEN_CASE, OPEN_CASE]})
    await refused(base | {"code": "Not A Code"})
    await refused(base | {"filter": {"field": "trigger.x", "op": "changed"}})
    await refused(base | {"filter": {"field": "nested", "op": "eq"}})
    await refused(base | {"surprise": True})
    await refused(
        base
        | {"trigger": {"connector": "webhook", "trigger": "delivery", "connection_id": "not-an-id"}}
    )
    missing = await desk.http.post("/api/v1/workflows/nosuch/publish", headers=desk.headers)
    assert missing.status_code == 404
    bad_publish = await desk.http.post(
        "/api/v1/workflows/nosuch/publish", json={"enabled": "sometimes"}, headers=desk.headers
    )
    assert bad_publish.status_code == 422
    not_an_id = await desk.http.get("/api/v1/executions/123", headers=desk.headers)
    assert not_an_id.status_code == 422


async def test_a_provider_delivering_one_event_twice_opens_one_case(
    desk: Desk, container: Container
) -> None:
    """Through the hook, the inbox, the runner and the case activity: a redelivery (the same
    delivery id, a body with a new timestamp, as providers resend) makes no second case."""
    flow = await published(desk, webhook_workflow("inbound", [OPEN_CASE]))
    path = httpx.URL(flow["subscription"]["hook_url"]).path
    first = {
        "subject": "Kettle leaks",
        "text": "Water everywhere.",
        "urgency": "normal",
        "from": "ann@example.com",
        "product": "K-1",
        "count": 1,
        "label": "kitchen",
    }
    for attempt, sent_at in enumerate(("10:00:00", "10:00:30")):
        answer = await desk.http.post(
            path,
            json=first | {"sent_at": sent_at},
            headers={"Idempotency-Key": "evt-0001", "X-Attempt": str(attempt + 1)},
        )
        assert answer.status_code == 200, answer.text
    assert await run_jobs(container, desk.tenant.id, PROCESS, RUN) >= 2
    listed = await desk.http.get("/api/v1/cases", headers=desk.headers)
    assert [case["title"] for case in listed.json()["items"]] == ["Kettle leaks"]
    runs = await desk.http.get(
        "/api/v1/executions", params={"workflow": "inbound"}, headers=desk.headers
    )
    assert [(run["source_id"], run["status"]) for run in runs.json()["items"]] == [
        ("evt-0001", "succeeded")
    ]
