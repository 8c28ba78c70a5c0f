"""Event rules: the filter chain, the actions through activities, loops, failures."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from casedesk.bootstrap import Container
from casedesk.domain.automation.rules import AddTag
from casedesk.domain.identity.roles import Role
from casedesk.store.models import Tenant
from casedesk.worker import actions as actions_module
from casedesk.worker.automation import Automation
from casedesk.worker.relay import to_message
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.delivery import Settle


async def _rule(desk: Desk, **spec: Any) -> dict[str, Any]:
    response = await desk.http.post("/api/v1/rules", json=spec, headers=desk.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _case(desk: Desk, case_id: str) -> dict[str, Any]:
    response = await desk.http.get(f"/api/v1/cases/{case_id}", headers=desk.headers)
    result: dict[str, Any] = response.json()
    return result


async def _history(desk: Desk, case_id: str) -> list[dict[str, Any]]:
    response = await desk.http.get(
        f"/api/v1/cases/{case_id}/history", params={"limit": 200}, headers=desk.headers
    )
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- the rules API ---------------------------------------------------------------------------


async def test_rules_are_managed_by_admins_and_listed_in_order(
    desk: Desk, tenants: Tenants, client: httpx.AsyncClient
) -> None:
    first = await _rule(
        desk, name="b", on=["case.created"], actions=[{"type": "add_tag", "tag": "x"}]
    )
    second = await _rule(
        desk, name="a", on=["case.created"], actions=[{"type": "add_tag", "tag": "y"}], position=0
    )
    listed = (await client.get("/api/v1/rules", headers=desk.headers)).json()
    assert [r["id"] for r in listed] == [second["id"], first["id"]]
    replaced = await client.put(
        f"/api/v1/rules/{first['id']}",
        json={
            "name": "b2",
            "on": ["case.updated"],
            "actions": [{"type": "add_tag", "tag": "z"}],
            "enabled": False,
        },
        headers=desk.headers,
    )
    assert replaced.status_code == 200
    assert replaced.json()["enabled"] is False
    assert replaced.json()["position"] == 1  # moved down when "a" was put first
    viewer = await tenants.member(desk.tenant.id, Role.VIEWER)
    denied = await client.post(
        "/api/v1/rules",
        json={"name": "v", "on": ["case.created"], "actions": [{"type": "add_tag", "tag": "v"}]},
        headers=viewer.headers,
    )
    assert denied.status_code == 403
    other = await tenants.create()
    assert (
        await client.get(f"/api/v1/rules/{first['id']}", headers=other.headers)
    ).status_code == 404
    assert (
        await client.delete(f"/api/v1/rules/{first['id']}", headers=other.headers)
    ).status_code == 404
    assert (
        await client.delete(f"/api/v1/rules/{first['id']}", headers=desk.headers)
    ).status_code == 204
    assert (
        await client.get(f"/api/v1/rules/{first['id']}", headers=desk.headers)
    ).status_code == 404


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"on": ["case.exploded"]}, "on.0"),
        ({"actions": [{"type": "launch"}]}, "actions.0"),
        ({"actions": []}, "actions"),
        ({"conditions": {"field": "case.priority", "op": "resembles", "value": 1}}, "conditions"),
        ({"conditions": {"field": "nope", "op": "eq", "value": 1}}, "conditions"),
        ({"actions": [{"type": "set_priority", "priority": "extreme"}]}, "actions.0"),
    ],
)
async def test_a_bad_rule_is_422_naming_the_field(
    desk: Desk, spec: dict[str, Any], field: str
) -> None:
    body = {"name": "r", "on": ["case.created"], "actions": [{"type": "add_tag", "tag": "t"}]}
    response = await desk.http.post("/api/v1/rules", json=body | spec, headers=desk.headers)
    assert response.status_code == 422, response.text
    assert any(e["field"].startswith(field) for e in response.json()["errors"])


# --- the engine ------------------------------------------------------------------------------


async def test_a_matching_rule_acts_through_activities_as_itself(
    desk: Desk, settle: Settle
) -> None:
    rule = await _rule(
        desk,
        name="urgent to billing",
        on=["case.created"],
        conditions={"all": [{"field": "case.priority", "op": "in", "value": ["high", "urgent"]}]},
        actions=[
            {"type": "add_tag", "tag": "hot"},
            {"type": "transfer", "queue": "billing"},
            {"type": "add_comment", "body": "escalated by a rule"},
        ],
    )
    hot = await desk.new_case(priority="urgent")
    calm = await desk.new_case(priority="low")
    await settle()
    after = await _case(desk, hot["id"])
    assert after["tags"] == ["hot"]
    assert after["queue"] == "billing"
    assert [c["body"] for c in after["comments"]] == ["escalated by a rule"]
    assert after["comments"][0]["author_type"] == "rule"
    records = [h for h in await _history(desk, hot["id"]) if h["operator"]["type"] == "rule"]
    assert [h["code"] for h in records] == ["case.update", "case.transfer", "comment.add"]
    assert {h["operator"]["id"] for h in records} == {rule["id"]}
    untouched = await _case(desk, calm["id"])
    assert (untouched["tags"], untouched["queue"]) == ([], "support")


async def test_change_conditions_and_the_stop_flag(desk: Desk, settle: Settle) -> None:
    await _rule(
        desk,
        name="waiting is low",
        on=["case.state_changed"],
        conditions={"field": "case.state", "op": "changed_to", "value": "waiting"},
        actions=[{"type": "set_priority", "priority": "low"}],
        stop=True,
    )
    await _rule(
        desk,
        name="never after a stop",
        on=["case.state_changed"],
        actions=[{"type": "add_tag", "tag": "second"}],
    )
    case = await desk.new_case(priority="high")
    await desk.act(case["id"], "start")
    await settle()
    started = await _case(desk, case["id"])
    assert started["priority"] == "high"
    assert started["tags"] == ["second"]
    await desk.act(case["id"], "wait")
    await settle()
    waiting = await _case(desk, case["id"])
    assert waiting["priority"] == "low"
    assert waiting["tags"] == ["second"]


async def test_a_rule_does_not_refire_on_its_own_change(desk: Desk, settle: Settle) -> None:
    await _rule(
        desk, name="tagger", on=["case.updated"], actions=[{"type": "add_tag", "tag": "seen"}]
    )
    case = await desk.new_case()
    await desk.http.patch(
        f"/api/v1/cases/{case['id']}", json={"title": "New title"}, headers=desk.headers
    )
    await settle()
    history = await _history(desk, case["id"])
    assert [h["operator"]["type"] for h in history if h["code"] == "case.update"] == [
        "user",
        "rule",
    ]


async def test_a_chain_of_rules_stops_at_depth_ten_with_a_warning(
    desk: Desk, settle: Settle
) -> None:
    await _rule(
        desk,
        name="up",
        on=["case.updated"],
        conditions={"field": "case.priority", "op": "eq", "value": "low"},
        actions=[{"type": "set_priority", "priority": "high"}],
    )
    await _rule(
        desk,
        name="down",
        on=["case.updated"],
        conditions={"field": "case.priority", "op": "eq", "value": "high"},
        actions=[{"type": "set_priority", "priority": "low"}],
    )
    case = await desk.new_case()
    await desk.http.patch(
        f"/api/v1/cases/{case['id']}", json={"priority": "low"}, headers=desk.headers
    )
    await settle()
    history = await _history(desk, case["id"])
    by_rules = [h for h in history if h["operator"]["type"] == "rule"]
    assert len(by_rules) == 10
    stopped = [h for h in history if h["code"] == "automation.chain_stopped"]
    assert len(stopped) == 1
    assert stopped[0]["memo"]["depth"] == 10


async def test_a_redelivered_event_does_not_make_a_rule_act_twice(
    desk: Desk, settle: Settle, container: Container
) -> None:
    await _rule(
        desk,
        name="commenter",
        on=["case.created"],
        actions=[{"type": "add_comment", "body": "hello"}],
    )
    case = await desk.new_case()
    async with container.unit_of_work() as uow:
        events = [
            e for e in await uow.outbox.pending(limit=10_000) if str(e.subject_id) == case["id"]
        ]
    await settle()
    group = Automation(container.database, container.extensions, rules_ttl=0)
    for event in events:
        await group.handle(to_message(event))
    assert [c["body"] for c in (await _case(desk, case["id"]))["comments"]] == ["hello"]


async def test_a_failing_rule_lets_the_others_run_and_is_dead_lettered(
    desk: Desk, settle: Settle, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(ctx: Any, case_id: Any, action: Any) -> None:
        raise RuntimeError("the tag service is down")

    monkeypatch.setitem(actions_module.ACTIONS, AddTag, broken)
    await _rule(desk, name="broken", on=["case.created"], actions=[{"type": "add_tag", "tag": "x"}])
    await _rule(
        desk,
        name="fine",
        on=["case.created"],
        actions=[{"type": "add_comment", "body": "still here"}],
    )
    case = await desk.new_case()
    await settle()
    after = await _case(desk, case["id"])
    assert [c["body"] for c in after["comments"]] == ["still here"]
    assert after["tags"] == []
    dead = (
        await client.get(
            "/api/v1/dead-letters", params={"group": "automation"}, headers=desk.headers
        )
    ).json()["items"]
    mine = [d for d in dead if d["envelope"]["subject"] == case["id"]]
    assert len(mine) == 1
    assert mine[0]["attempts"] == 5
    assert "tag service is down" in mine[0]["error"]


async def test_a_refused_action_is_recorded_and_not_retried(desk: Desk, settle: Settle) -> None:
    await _rule(
        desk,
        name="impossible",
        on=["case.created"],
        actions=[{"type": "apply_action", "action": "close"}],
    )
    case = await desk.new_case()
    await settle()
    history = await _history(desk, case["id"])
    refused = [h for h in history if h["code"] == "automation.refused"]
    assert len(refused) == 1
    assert "not allowed" in refused[0]["memo"]["reason"]
    assert (await _case(desk, case["id"]))["state"] == "new"


async def test_a_disabled_tenant_runs_no_rules(
    desk: Desk, settle: Settle, container: Container
) -> None:
    await _rule(desk, name="tagger", on=["case.created"], actions=[{"type": "add_tag", "tag": "t"}])
    case = await desk.new_case()
    async with container.unit_of_work() as uow:
        await uow.begin_write()
        await uow.session.execute(
            update(Tenant).where(Tenant.id == desk.tenant.id).values(enabled=False)
        )
        await uow.commit()
    await settle()
    async with container.unit_of_work(desk.tenant.id) as uow:
        stored = await uow.cases.get(__import__("uuid").UUID(case["id"]))
    assert stored.tags == []


async def test_rules_are_reused_for_their_ttl_then_reloaded(
    desk: Desk, container: Container
) -> None:
    automation = Automation(container.database, container.extensions, rules_ttl=3600)
    before = await automation.rules_of(desk.tenant.id)
    assert before.rules == []
    await _rule(desk, name="new", on=["case.created"], actions=[{"type": "add_tag", "tag": "n"}])
    assert (await automation.rules_of(desk.tenant.id)).rules == []
    automation.rules_ttl = 0
    after = await automation.rules_of(desk.tenant.id)
    assert [rule.name for rule, _ in after.rules] == ["new"]
    assert after.listening_to("case.created")
    assert not after.listening_to("comment.added")
