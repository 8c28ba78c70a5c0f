"""Rules that cannot work are refused when saved; rules see the customer and every event a
producer emits, SLA breaches included."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from casedesk.bootstrap import Container
from casedesk.domain.events import EVENTS, EventType
from casedesk.domain.identity.roles import Role
from casedesk.store.models import ScheduledJob
from casedesk.worker.automation import Automation
from casedesk.worker.scheduler import Scheduler
from casedesk.worker.sla import BREACH, Sla
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.delivery import delivering_to


async def _save(desk: Desk, **spec: Any) -> httpx.Response:
    body = {"name": "r", "on": ["case.created"]} | spec
    return await desk.http.post("/api/v1/rules", json=body, headers=desk.headers)


def _fields(response: httpx.Response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


async def test_a_rule_naming_what_does_not_exist_is_refused_naming_each_one(
    desk: Desk, tenants: Tenants
) -> None:
    stranger = await tenants.create()
    viewer = await tenants.member(desk.tenant.id, Role.VIEWER)
    response = await _save(
        desk,
        conditions={
            "all": [
                {"field": "case.priority", "op": "eq", "value": "high"},
                {"field": "case.colour", "op": "eq", "value": "red"},
                {"any": [{"field": "customer.shoe_size", "op": "gt", "value": 40}]},
                {"field": "event.metric", "op": "eq", "value": "resolution"},
            ]
        },
        actions=[
            {"type": "transfer", "queue": "nowhere"},
            {"type": "apply_action", "action": "teleport"},
            {"type": "assign", "user_id": str(stranger.admin_id)},
            {"type": "assign", "user_id": str(viewer.id)},
            {"type": "send_webhook", "webhook_id": str(uuid.uuid4())},
            {"type": "apply_action", "action": "solve"},
            {"type": "transfer", "queue": "billing"},
        ],
    )
    assert response.status_code == 422, response.text
    assert _fields(response) == [
        "conditions.all.1.field",
        "conditions.all.2.any.0.field",
        "conditions.all.3.field",
        "actions.0.queue",
        "actions.1.action",
        "actions.2.user_id",
        "actions.3.user_id",
        "actions.4.webhook_id",
    ]
    messages = " | ".join(error["message"] for error in response.json()["errors"])
    assert "case.colour names no field" in messages
    assert "no queue 'nowhere'" in messages
    assert "'teleport'" in messages
    assert "solve" in messages  # the actions that do exist are listed
    listed = await desk.http.get("/api/v1/rules", headers=desk.headers)
    assert listed.json() == []


async def test_a_rule_naming_what_exists_is_saved_and_replacing_it_checks_again(
    desk: Desk,
) -> None:
    saved = await _save(
        desk,
        on=["sla.breached"],
        conditions={"all": [{"field": "event.metric", "op": "eq", "value": "resolution"}]},
        actions=[
            {"type": "apply_action", "action": "start"},
            {"type": "transfer", "queue": "billing"},
        ],
    )
    assert saved.status_code == 201, saved.text
    replaced = await desk.http.put(
        f"/api/v1/rules/{saved.json()['id']}",
        json={"name": "r", "on": ["case.created"], "actions": [{"type": "transfer", "queue": "x"}]},
        headers=desk.headers,
    )
    assert replaced.status_code == 422
    assert _fields(replaced) == ["actions.0.queue"]
    kept = await desk.http.get(f"/api/v1/rules/{saved.json()['id']}", headers=desk.headers)
    assert kept.json()["on"] == ["sla.breached"]


async def test_a_time_rule_naming_a_missing_queue_or_field_is_refused(desk: Desk) -> None:
    response = await desk.http.post(
        "/api/v1/time-rules",
        json={
            "name": "stale",
            "since": "updated",
            "hours": 48,
            "conditions": {"all": [{"field": "case.stat", "op": "eq", "value": "open"}]},
            "actions": [{"type": "transfer", "queue": "escalations"}],
        },
        headers=desk.headers,
    )
    assert response.status_code == 422, response.text
    assert _fields(response) == ["conditions.all.0.field", "actions.0.queue"]


async def test_a_bad_condition_operator_is_one_error_naming_it_and_the_allowed_ones(
    desk: Desk,
) -> None:
    response = await _save(
        desk,
        conditions={"all": [{"field": "case.priority", "op": "resembles", "value": "high"}]},
        actions=[{"type": "add_tag", "tag": "x"}],
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    assert errors[0]["field"] == "conditions.all.0.op"
    assert "'eq'" in errors[0]["message"]
    assert "'changed_to'" in errors[0]["message"]


async def test_a_rule_naming_an_event_no_producer_emits_is_refused(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = await _save(desk, on=["case.exploded"], actions=[{"type": "add_tag", "tag": "x"}])
    assert unknown.status_code == 422
    assert "no part of casedesk emits 'case.exploded'" in unknown.text
    about_a_connection = EventType("connection.needs_reauth", "connection", "token revoked")
    monkeypatch.setitem(EVENTS._types, about_a_connection.name, about_a_connection)
    other_subject = await _save(
        desk, on=["connection.needs_reauth"], actions=[{"type": "add_tag", "tag": "x"}]
    )
    assert other_subject.status_code == 422
    assert "is about a connection, not a case" in other_subject.text
    webhook = await desk.http.post(
        "/api/v1/webhooks",
        json={"name": "ops", "url": "https://ops.example.com/hook", "events": ["connection.*"]},
        headers=desk.headers,
    )
    assert webhook.status_code == 201, webhook.text


async def test_a_rule_can_look_at_the_customer_of_the_case(
    desk: Desk, container: Container
) -> None:
    saved = await _save(
        desk,
        conditions={"all": [{"field": "customer.domain", "op": "eq", "value": "vip.example"}]},
        actions=[{"type": "set_priority", "priority": "urgent"}],
    )
    assert saved.status_code == 201, saved.text
    automation = Automation(container.database, container.extensions, rules_ttl=0)
    async with delivering_to(container, automation.group()) as settle:
        vip = await desk.new_case(customer={"email": "ann@vip.example"})
        plain = await desk.new_case(customer={"email": "bob@example.com"})
        nobody = await desk.new_case()
        await settle()
    priorities = {}
    for case in (vip, plain, nobody):
        detail = await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)
        priorities[case["id"]] = detail.json()["priority"]
    assert priorities == {vip["id"]: "urgent", plain["id"]: "normal", nobody["id"]: "normal"}


async def test_an_escalation_rule_runs_when_an_sla_is_breached(
    desk: Desk, container: Container
) -> None:
    policy = await desk.http.post(
        "/api/v1/sla-policies",
        json={"name": "p", "resolution_minutes": 60},
        headers=desk.headers,
    )
    assert policy.status_code == 201, policy.text
    saved = await _save(
        desk,
        name="escalate",
        on=["sla.breached"],
        conditions={"all": [{"field": "event.metric", "op": "eq", "value": "resolution"}]},
        actions=[{"type": "transfer", "queue": "billing"}, {"type": "add_tag", "tag": "breached"}],
    )
    assert saved.status_code == 201, saved.text
    sla = Sla(container.database, container.extensions)
    automation = Automation(container.database, container.extensions, rules_ttl=0)
    async with delivering_to(container, sla.group(), automation.group()) as settle:
        case = await desk.new_case()
        await settle()
        async with container.unit_of_work(desk.tenant.id) as uow:
            await uow.begin_write()
            await uow.session.execute(
                update(ScheduledJob)
                .where(ScheduledJob.kind == BREACH, ScheduledJob.case_id == uuid.UUID(case["id"]))
                .values(due_at=datetime.now().astimezone() - timedelta(seconds=1))
                .execution_options(synchronize_session=False)
            )
            await uow.commit()
        scheduler = Scheduler(container.database, {BREACH: sla.run_job})
        while await scheduler.run_once():
            pass
        await settle()
    detail = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert detail["tags"] == ["breached"]
    assert detail["queue"] == "billing"
