"""The workflow runner: items become cases through the activities, every step recorded."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, update

from casedesk.bootstrap import Container, job_handlers
from casedesk.kit.clock import utcnow
from casedesk.platform.intake import RUN
from casedesk.platform.runner import Runner
from casedesk.store.jobs import LeaseLost
from casedesk.store.models import Case, ScheduledJob
from tests.support.cases import Desk
from tests.support.http_server import LocalHTTPServer, Reply, local_http_server
from tests.support.workflows import (
    OPEN_CASE,
    add_connection,
    add_connector,
    delivery,
    execution,
    fire_items,
    published,
    quick_runner,
    run_due,
    webhook_workflow,
)

COMMENT: dict[str, Any] = {
    "name": "note",
    "kind": "add_comment",
    "case": "{{ steps.open.id }}",
    "body": "Case {{ steps.open.number }} opened from delivery {{ trigger_id }}",
    "public": False,
}


@pytest.fixture
async def server() -> Any:
    async with local_http_server() as running:
        yield running


async def _case(desk: Desk, case_id: str) -> dict[str, Any]:
    response = await desk.http.get(f"/api/v1/cases/{case_id}", headers=desk.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def _cases_of(container: Container, tenant_id: uuid.UUID) -> int:
    async with container.unit_of_work(tenant_id) as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Case)) or 0)


async def test_a_delivery_creates_a_case_with_mapped_fields_and_a_comment_naming_it(
    desk: Desk, container: Container
) -> None:
    flow = await published(desk, webhook_workflow("inbound", [OPEN_CASE, COMMENT]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("d-1")
    )
    await run_due(quick_runner(container), container)

    ran = await execution(desk, queued.id)
    assert ran["status"] == "succeeded", ran
    assert ran["workflow"] == "inbound"
    assert ran["workflow_version"] == 1
    open_step, note_step = ran["steps"]
    assert open_step["name"] == "open"
    assert open_step["status"] == "succeeded"
    assert open_step["input"]["title"] == "Printer on fire"
    assert open_step["input"]["external_ref"] == "inbound:d-1"
    assert open_step["duration_ms"] >= 0
    case = await _case(desk, open_step["output"]["id"])
    assert case["title"] == "Printer on fire"
    assert case["description"] == "It smokes."
    assert case["priority"] == "high"
    assert case["form"] == {"product": "P-9", "quantity": 2}
    assert case["tags"] == ["hardware", "inbound"]
    assert case["customer"]["email"] == "ann@example.com"
    assert case["channel"] == "workflow"
    assert note_step["status"] == "succeeded"
    assert note_step["input"]["case"] == case["id"]
    [comment] = case["comments"]
    assert comment["body"] == f"Case {case['number']} opened from delivery d-1"
    assert comment["public"] is False
    history = await desk.http.get(f"/api/v1/cases/{case['id']}/history", headers=desk.headers)
    operators = {entry["operator"]["type"] for entry in history.json()["items"]}
    assert operators == {"workflow"}
    created = [e for e in await desk.events() if e["type"] == "case.created"]
    assert created[-1]["data"]["actor"]["type"] == "workflow"
    # The case's record carries the execution's trace.
    assert {entry["trace_id"] for entry in history.json()["items"]} == {ran["trace_id"]}


async def test_the_filter_drops_an_item_and_nothing_runs(desk: Desk, container: Container) -> None:
    body = webhook_workflow(
        "picky",
        [OPEN_CASE],
        filter={"field": "trigger.body.urgency", "op": "in", "value": ["high", "urgent"]},
    )
    flow = await published(desk, body)
    low, high = await fire_items(
        container,
        desk.tenant.id,
        flow["subscription"]["id"],
        delivery("low-1", urgency="low"),
        delivery("high-1"),
    )
    await run_due(quick_runner(container), container)
    dropped = await execution(desk, low.id)
    assert dropped["status"] == "filtered"
    assert [(s["kind"], s["status"]) for s in dropped["steps"]] == [("filter", "filtered")]
    kept = await execution(desk, high.id)
    assert kept["status"] == "succeeded"
    assert [s["kind"] for s in kept["steps"]] == ["filter", "create_case"]
    assert await _cases_of(container, desk.tenant.id) == 1


async def test_a_step_whose_condition_fails_is_skipped(desk: Desk, container: Container) -> None:
    urgent_note = COMMENT | {
        "when": {"field": "steps.open.priority", "op": "eq", "value": "urgent"}
    }
    flow = await published(desk, webhook_workflow("skips", [OPEN_CASE, urgent_note]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("s-1")
    )
    await run_due(quick_runner(container), container)
    ran = await execution(desk, queued.id)
    assert ran["status"] == "succeeded"
    assert [s["status"] for s in ran["steps"]] == ["succeeded", "skipped"]
    assert (await _case(desk, ran["steps"][0]["output"]["id"]))["comments"] == []


async def test_a_replay_finds_the_case_the_first_run_made(desk: Desk, container: Container) -> None:
    flow = await published(desk, webhook_workflow("replayed", [OPEN_CASE]))
    [first] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("r-1")
    )
    runner = quick_runner(container)
    await run_due(runner, container)
    again = await desk.http.post(f"/api/v1/executions/{first.id}/replay", headers=desk.headers)
    assert again.status_code == 202, again.text
    replay = again.json()
    assert replay["replay_of"] == str(first.id)
    assert replay["status"] == "queued"
    assert replay["trigger_item"] == first.trigger_item
    await run_due(runner, container)
    original, replayed = await execution(desk, first.id), await execution(desk, replay["id"])
    assert replayed["status"] == "succeeded"
    assert replayed["steps"][0]["output"]["created"] is False
    assert replayed["steps"][0]["output"]["id"] == original["steps"][0]["output"]["id"]
    assert await _cases_of(container, desk.tenant.id) == 1


async def test_a_repeated_item_of_another_workflow_gets_its_own_case(
    desk: Desk, container: Container
) -> None:
    one = await published(desk, webhook_workflow("one", [OPEN_CASE]))
    two = await published(desk, webhook_workflow("two", [OPEN_CASE]))
    await fire_items(container, desk.tenant.id, one["subscription"]["id"], delivery("same"))
    await fire_items(container, desk.tenant.id, two["subscription"]["id"], delivery("same"))
    await run_due(quick_runner(container), container)
    assert await _cases_of(container, desk.tenant.id) == 2


async def test_a_template_that_cannot_render_fails_its_step_with_the_reason(
    desk: Desk, container: Container
) -> None:
    broken = OPEN_CASE | {"title": "{{ trigger.body.missing.deeper }}"}
    flow = await published(desk, webhook_workflow("broken", [broken]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("b-1")
    )
    await run_due(quick_runner(container), container)
    ran = await execution(desk, queued.id)
    assert ran["status"] == "failed"
    assert ran["attempts"] == 1  # an expression error is final: no retry
    [step] = ran["steps"]
    assert step["status"] == "failed"
    assert "trigger.body.missing.deeper" in step["error"]
    assert ran["error"] == step["error"]
    failed = [e for e in await desk.events() if e["type"] == "execution.failed"]
    assert failed[-1]["subject"] == str(queued.id)
    assert failed[-1]["data"]["workflow"] == "broken"
    assert failed[-1]["data"]["execution"]["status"] == "failed"


async def test_a_refused_step_fails_and_a_retry_after_the_fix_goes_on_from_it(
    desk: Desk, container: Container
) -> None:
    second = OPEN_CASE | {
        "name": "escalate",
        "template": "{{ trigger.body.kind }}",
        "external_ref": "escalated:{{ trigger_id }}",
    }
    flow = await published(desk, webhook_workflow("refused", [OPEN_CASE, COMMENT, second]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("x-1", kind="incident")
    )
    runner = quick_runner(container, retries=3)
    await run_due(runner, container)
    ran = await execution(desk, queued.id)
    assert ran["status"] == "failed"
    assert ran["attempts"] == 1
    assert [s["status"] for s in ran["steps"]] == ["succeeded", "succeeded", "failed"]
    assert "no template 'incident'" in ran["steps"][2]["error"]
    assert ran["error"] == ran["steps"][2]["error"]

    template = await desk.http.post(
        "/api/v1/templates",
        json={
            "code": "incident",
            "name": "Incident",
            "state_machine": "basic",
            "default_queue": "billing",
        },
        headers=desk.headers,
    )
    assert template.status_code == 201, template.text
    retried = await desk.http.post(f"/api/v1/executions/{queued.id}/retry", headers=desk.headers)
    assert retried.status_code == 202, retried.text
    assert retried.json()["status"] == "queued"
    assert retried.json()["error"] is None
    await run_due(runner, container)
    again = await execution(desk, queued.id)
    assert again["status"] == "succeeded"
    assert again["attempts"] == 2
    assert again["workflow_version"] == 1
    assert [(s["name"], s["status"]) for s in again["steps"]] == [
        ("open", "succeeded"),
        ("note", "succeeded"),
        ("escalate", "failed"),
        ("escalate", "succeeded"),
    ]
    # The steps that had succeeded were not made again: one case each, one comment.
    assert await _cases_of(container, desk.tenant.id) == 2
    first_case = await _case(desk, again["steps"][0]["output"]["id"])
    assert len(first_case["comments"]) == 1
    not_failed = await desk.http.post(f"/api/v1/executions/{queued.id}/retry", headers=desk.headers)
    assert not_failed.status_code == 409


async def test_a_transient_failure_is_retried_and_steps_that_succeeded_stand(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    server.script(
        "/notify",
        Reply.json({"error": "busy"}, status=503),
        Reply.json({"ok": True, "ticket": 7}),
    )
    notify = {
        "name": "notify",
        "kind": "http_request",
        "request": {
            "method": "POST",
            "path": f"{server.url}/notify",
            "json": {"case": "{{ steps.open.id }}", "subject": "{{ trigger.body.subject }}"},
        },
    }
    flow = await published(desk, webhook_workflow("flaky", [OPEN_CASE, notify]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("f-1")
    )
    await run_due(quick_runner(container, retries=2), container)
    ran = await execution(desk, queued.id)
    assert ran["status"] == "succeeded", ran
    assert ran["attempts"] == 2
    kinds = [(s["name"], s["status"]) for s in ran["steps"]]
    assert kinds == [("open", "succeeded"), ("notify", "failed"), ("notify", "succeeded")]
    failed_step = ran["steps"][1]
    assert "503" in failed_step["error"]
    assert failed_step["trace_ids"] == [ran["trace_id"]]
    assert ran["steps"][2]["output"]["body"] == {"ok": True, "ticket": 7}
    sent = server.requests_to("/notify")
    assert len(sent) == 2
    assert sent[0].headers["traceparent"].split("-")[1] == ran["trace_id"]
    assert await _cases_of(container, desk.tenant.id) == 1


async def test_transient_failures_fail_the_execution_when_the_retries_run_out(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    server.script("/down", Reply.json({"error": "down"}, status=502))
    call = {
        "name": "call",
        "kind": "http_request",
        "request": {"method": "POST", "path": f"{server.url}/down"},
    }
    flow = await published(desk, webhook_workflow("down", [call]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("t-1")
    )
    await run_due(quick_runner(container, retries=2), container)
    ran = await execution(desk, queued.id)
    assert ran["status"] == "failed"
    assert ran["attempts"] == 3
    assert [s["status"] for s in ran["steps"]] == ["failed"] * 3
    assert "502" in ran["error"]


async def test_a_4xx_answer_is_final(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    server.script("/strict", Reply.json({"error": "no such thing"}, status=404))
    call = {"name": "call", "kind": "http_request", "request": {"path": f"{server.url}/strict"}}
    flow = await published(desk, webhook_workflow("strict", [call]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("4-1")
    )
    await run_due(quick_runner(container, retries=3), container)
    ran = await execution(desk, queued.id)
    assert ran["status"] == "failed"
    assert ran["attempts"] == 1
    assert "404" in ran["error"]


async def test_a_rate_limited_post_runs_again_no_sooner_than_its_retry_after(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    """The hub does not repeat a POST; the execution's next run waits for the service."""
    limited = Reply.json({"error": "slow down"}, status=429, headers={"Retry-After": "600"})
    server.script("/busy", limited)
    call = {
        "name": "call",
        "kind": "http_request",
        "request": {"method": "POST", "path": f"{server.url}/busy", "json": {"a": 1}},
    }
    flow = await published(desk, webhook_workflow("busy", [call]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("429-1")
    )
    before = utcnow()
    await run_due(quick_runner(container, retries=3), container)
    ran = await execution(desk, queued.id)
    assert ran["status"] == "queued"
    assert "429" in ran["error"]
    assert len(server.requests_to("/busy")) == 1
    async with container.unit_of_work(desk.tenant.id) as uow:
        pending = await uow.session.scalars(
            select(ScheduledJob).where(ScheduledJob.kind == RUN, ScheduledJob.status == "pending")
        )
        (job,) = [j for j in pending if j.payload["execution_id"] == str(queued.id)]
    assert job.due_at >= before + timedelta(seconds=590)


CRM: dict[str, Any] = {
    "id": "crm",
    "name": "CRM",
    "base_url": "{{ connection.base_url }}",
    "connection": {
        "settings": {
            "type": "object",
            "required": ["base_url"],
            "properties": {"base_url": {"type": "string"}},
        },
        "secrets": [{"name": "token"}],
    },
    "auth": {"type": "bearer", "secret_field": "token"},
    "actions": {
        "log": {
            "input": {
                "type": "object",
                "required": ["subject"],
                "properties": {"subject": {"type": "string"}, "count": {"type": "integer"}},
            },
            "request": {
                "method": "POST",
                "path": "/entries",
                "json": {"subject": "{{ input.subject }}", "count": "{{ input.count }}"},
            },
            "output": "entry",
        }
    },
}


async def test_a_connector_action_calls_through_its_connection_and_maps_the_answer(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    await add_connector(container, desk.tenant.id, CRM)
    connection = await add_connection(
        container, desk.tenant.id, "crm", {"base_url": server.url}, {"token": "s3cret"}
    )
    server.script("/entries", Reply.json({"entry": {"id": "E-1"}}, status=201))
    log = {
        "name": "log",
        "kind": "connector_action",
        "connection_id": connection,
        "action": "log",
        "input": {"subject": "{{ trigger.body.subject }}", "count": "{{ trigger.body.count }}"},
    }
    follow_up = COMMENT | {"body": "logged as {{ steps.log.body.id }}"}
    flow = await published(desk, webhook_workflow("crm-log", [OPEN_CASE, log, follow_up]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("c-1")
    )
    await run_due(quick_runner(container), container)
    ran = await execution(desk, queued.id)
    assert ran["status"] == "succeeded", ran
    assert ran["steps"][1]["output"] == {"status": 201, "body": {"id": "E-1"}}
    assert ran["steps"][1]["input"]["input"] == {"subject": "Printer on fire", "count": 2}
    [sent] = server.requests_to("/entries")
    assert sent.headers["authorization"] == "Bearer s3cret"
    case = await _case(desk, ran["steps"][0]["output"]["id"])
    assert case["comments"][0]["body"] == "logged as E-1"
    traces = await desk.http.get(
        "/api/v1/traces", params={"execution_id": str(queued.id)}, headers=desk.headers
    )
    assert traces.status_code == 200


async def test_an_http_request_record_never_shows_the_connection_secrets(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    await add_connector(container, desk.tenant.id, CRM | {"auth": {"type": "none"}})
    connection = await add_connection(
        container, desk.tenant.id, "crm", {"base_url": server.url}, {"token": "t0ps3cret"}
    )
    call = {
        "name": "call",
        "kind": "http_request",
        "connection_id": connection,
        "request": {
            "path": "/who",
            "headers": {"X-Key": "{{ secrets.token }}"},
            "query": {"subject": "{{ trigger.body.subject }}"},
        },
    }
    flow = await published(desk, webhook_workflow("with-key", [call]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("k-1")
    )
    await run_due(quick_runner(container), container)
    ran = await execution(desk, queued.id)
    assert ran["status"] == "succeeded", ran
    [sent] = server.requests_to("/who")
    assert sent.headers["x-key"] == "t0ps3cret"
    assert "t0ps3cret" not in str(ran)
    assert ran["steps"][0]["input"]["headers"] == {"X-Key": "[redacted]"}
    assert ran["steps"][0]["input"]["url"].endswith("/who")


ENRICHED: dict[str, Any] = {
    "id": "mailbox",
    "name": "Mailbox",
    "triggers": {
        "mail": {
            "kind": "instant",
            "enricher": "message",
            "instant": {"event_id": "body.event", "item_id": "body.message_id"},
        }
    },
    "enrichers": {"message": {"request": {"path": "{{ id }}"}}},
}


async def test_the_steps_see_the_enriched_entity_and_a_vanished_one_is_dropped(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    """The runner hands the trigger's id to the enricher stage, which fetches the entity
    through the connector's enricher from a real local server."""
    await add_connector(container, desk.tenant.id, ENRICHED)
    server.script("/m-here", Reply.json({"subject": "Fetched", "text": "body", "from": "b@x.io"}))
    server.script("/m-gone", Reply.json({"error": "gone"}, status=404))

    body = webhook_workflow(
        "fetched",
        [
            OPEN_CASE
            | {
                "title": "{{ trigger.subject }}",
                "description": None,
                "priority": None,
                "customer_email": "{{ trigger.from }}",
                "form": {},
                "tags": [],
            }
        ],
    ) | {"trigger": {"connector": "mailbox", "trigger": "mail"}}
    flow = await published(desk, body)
    here, gone = await fire_items(
        container,
        desk.tenant.id,
        flow["subscription"]["id"],
        delivery("e-1", message_id=f"{server.url}/m-here"),
        delivery("e-2", message_id=f"{server.url}/m-gone"),
    )
    await run_due(quick_runner(container), container)
    ran = await execution(desk, here.id)
    assert ran["status"] == "succeeded", ran
    assert ran["steps"][0]["kind"] == "enrich"
    assert ran["steps"][0]["output"]["subject"] == "Fetched"
    assert ran["steps"][1]["input"]["title"] == "Fetched"
    dropped = await execution(desk, gone.id)
    assert dropped["status"] == "dropped"
    assert [(s["kind"], s["status"]) for s in dropped["steps"]] == [("enrich", "gone")]
    assert "answered 404" in dropped["steps"][0]["error"]


async def test_only_the_items_enrich_when_chooses_are_enriched_and_the_entity_joins_them(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    mail = ENRICHED["triggers"]["mail"] | {
        "enrich_when": "body.message_id",
        "enriched_as": "fetched",
    }
    await add_connector(
        container, desk.tenant.id, ENRICHED | {"id": "joined", "triggers": {"mail": mail}}
    )
    server.script("/m-1", Reply.json({"subject": "Fetched"}))
    title = "{{ trigger.fetched.subject if trigger.fetched is defined else trigger.body.subject }}"
    body = webhook_workflow(
        "joined",
        [OPEN_CASE | {"title": title, "description": None, "priority": None, "form": {}}],
    ) | {"trigger": {"connector": "joined", "trigger": "mail"}}
    flow = await published(desk, body)
    fetched, whole = await fire_items(
        container,
        desk.tenant.id,
        flow["subscription"]["id"],
        delivery("j-1", message_id=f"{server.url}/m-1"),
        delivery("j-2", subject="Carried whole"),
    )
    await run_due(quick_runner(container), container)
    joined = await execution(desk, fetched.id)
    assert joined["status"] == "succeeded", joined
    assert joined["steps"][0]["output"]["body"]["message_id"].endswith("/m-1")
    assert joined["steps"][0]["output"]["fetched"] == {"subject": "Fetched"}
    assert joined["steps"][1]["input"]["title"] == "Fetched"
    plain = await execution(desk, whole.id)
    assert plain["status"] == "succeeded", plain
    assert [step["kind"] for step in plain["steps"]] == ["create_case"]
    assert plain["steps"][0]["input"]["title"] == "Carried whole"
    assert len(server.requests_to("/m-1")) == 1


async def test_a_run_is_made_once_however_often_its_job_runs(
    desk: Desk, container: Container
) -> None:
    flow = await published(desk, webhook_workflow("once", [OPEN_CASE, COMMENT]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("o-1")
    )
    runner = quick_runner(container)
    await run_due(runner, container)
    async with container.unit_of_work(desk.tenant.id) as uow:
        job = await uow.jobs.find(f"{RUN}:{queued.id}")
    assert job is not None
    await runner.run_job(job)  # a worker that lost its lease, or a repeated job
    ran = await execution(desk, queued.id)
    assert len(ran["steps"]) == 2
    case = await _case(desk, ran["steps"][0]["output"]["id"])
    assert len(case["comments"]) == 1


def test_the_worker_routes_execution_jobs_to_the_runner(container: Container) -> None:
    assert job_handlers(container)[RUN].__qualname__ == "Runner.run_job"


async def test_a_stale_job_of_an_earlier_run_runs_nothing(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    server.script("/busy", Reply.json({"error": "busy"}, status=503))
    call = {
        "name": "call",
        "kind": "http_request",
        "request": {"method": "POST", "path": f"{server.url}/busy"},
    }
    flow = await published(desk, webhook_workflow("stale", [OPEN_CASE, call]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("st-1")
    )
    later = Runner(
        container.database,
        container.extensions,
        container.hub,
        container.box,
        retry_delays=[timedelta(hours=1)],
    )
    await run_due(later, container)
    waiting = await execution(desk, queued.id)
    assert waiting["status"] == "queued"  # its next run is due in an hour
    assert "503" in waiting["error"]
    async with container.unit_of_work(desk.tenant.id) as uow:
        first = await uow.jobs.find(f"{RUN}:{queued.id}")
        second = await uow.jobs.find(f"{RUN}:{queued.id}:2")
    assert first is not None
    assert second is not None
    assert second.status == "pending"
    await later.run_job(first)  # the first run's job, run again: not this execution's turn
    assert (await execution(desk, queued.id))["steps"] == waiting["steps"]
    assert len(server.requests_to("/busy")) == 1


async def test_a_runner_whose_lease_was_taken_over_commits_nothing(
    desk: Desk, container: Container
) -> None:
    flow = await published(desk, webhook_workflow("taken", [OPEN_CASE]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("tk-1")
    )
    key = f"{RUN}:{queued.id}"
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        job = await uow.jobs.find(key)
        assert job is not None
        job.status, job.lease_owner = "running", "worker-a"
        job.lease_until = utcnow() + timedelta(minutes=1)
        await uow.commit()
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        await uow.session.execute(
            update(ScheduledJob).where(ScheduledJob.key == key).values(lease_owner="worker-b")
        )
        await uow.commit()
    with pytest.raises(LeaseLost):
        await quick_runner(container).run_job(job)
    untouched = await execution(desk, queued.id)
    assert (untouched["status"], untouched["attempts"], untouched["steps"]) == ("queued", 0, [])
    assert await _cases_of(container, desk.tenant.id) == 0


async def test_an_execution_whose_version_is_gone_fails_with_the_reason(
    desk: Desk, container: Container
) -> None:
    flow = await published(desk, webhook_workflow("vanished", [OPEN_CASE]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("v-1")
    )
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        (await uow.executions.get(queued.id)).workflow_version = 99
        await uow.commit()
    await run_due(quick_runner(container), container)
    ran = await execution(desk, queued.id)
    assert ran["status"] == "failed"
    assert ran["error"] == "version 99 of workflow 'vanished' is gone"
    failed = [e for e in await desk.events() if e["type"] == "execution.failed"]
    assert failed[-1]["subject"] == str(queued.id)


def _batched(server: LocalHTTPServer) -> dict[str, Any]:
    """A connector whose enricher fetches several messages with one batch request."""
    return {
        "id": "batched",
        "name": "Batched mailbox",
        "triggers": {
            "mail": {
                "kind": "instant",
                "enricher": "message",
                "instant": {"event_id": "body.event", "item_id": "body.message_id"},
            }
        },
        "enrichers": {
            "message": {
                "request": {"path": f"{server.url}/m/{{{{ id }}}}"},
                "batch": {
                    "request": {
                        "method": "POST",
                        "path": f"{server.url}/batch",
                        "json": {"ids": "{{ ids }}"},
                    },
                    "entities": "found",
                    "max_ids": 20,
                },
            }
        },
    }


async def _batch_answer(received: Any) -> Reply:
    ids = orjson.loads(received.body)["ids"]
    return Reply.json({"found": [{"id": i, "subject": f"Subject {i}"} for i in ids]})


async def _one_answer(received: Any) -> Reply:
    entity_id = received.path.rsplit("/", 1)[-1]
    return Reply.json({"id": entity_id, "subject": f"Subject {entity_id}"})


def _titled(code: str) -> dict[str, Any]:
    return webhook_workflow(
        code,
        [
            OPEN_CASE
            | {
                "title": "{{ trigger.subject }}",
                "description": None,
                "priority": None,
                "customer_email": "c@example.com",
                "form": {},
                "tags": [],
            }
        ],
    ) | {"trigger": {"connector": "batched", "trigger": "mail"}}


async def test_executions_waiting_together_are_enriched_with_one_batch_request(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    await add_connector(container, desk.tenant.id, _batched(server))
    server.handle("/batch", _batch_answer)
    for entity_id in ("a", "b", "c"):
        server.handle(f"/m/{entity_id}", _one_answer)
    flow = await published(desk, _titled("batched"))
    made = await fire_items(
        container,
        desk.tenant.id,
        flow["subscription"]["id"],
        *(delivery(f"e-{i}", message_id=i) for i in ("a", "b", "c")),
    )
    await run_due(quick_runner(container), container)
    (batch,) = server.requests_to("/batch")
    assert sorted(orjson.loads(batch.body)["ids"]) == ["a", "b", "c"]
    assert [r.path for r in server.received if r.path.startswith("/m/")] == []
    titles = []
    for queued in made:
        ran = await execution(desk, queued.id)
        assert ran["status"] == "succeeded", ran
        assert [s["kind"] for s in ran["steps"]] == ["enrich", "create_case"]
        titles.append(ran["steps"][1]["input"]["title"])
    assert sorted(titles) == ["Subject a", "Subject b", "Subject c"]
    assert await _cases_of(container, desk.tenant.id) == 3


async def test_a_lone_execution_of_a_batching_enricher_is_fetched_with_the_single_request(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    await add_connector(container, desk.tenant.id, _batched(server))
    server.handle("/batch", _batch_answer)
    server.handle("/m/a", _one_answer)
    flow = await published(desk, _titled("lone"))
    (queued,) = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("e-a", message_id="a")
    )
    await run_due(quick_runner(container), container)
    assert server.requests_to("/batch") == []
    assert len(server.requests_to("/m/a")) == 1
    assert (await execution(desk, queued.id))["status"] == "succeeded"
