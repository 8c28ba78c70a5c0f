"""Time rules: a case that has been so for so long gets the rule's actions, once per moment."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from casedesk.bootstrap import Container
from casedesk.domain.automation.calendar import Calendar, add_business_time
from casedesk.domain.identity.roles import Role
from casedesk.store.models import ScheduledJob
from casedesk.worker.scheduler import Scheduler
from casedesk.worker.timers import RUN, SCAN, Timers
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.delivery import delivering_to

Settle = Callable[[], Awaitable[None]]
Travel = Callable[[Desk, timedelta], Awaitable[int]]
NUDGE: dict[str, Any] = {
    "name": "Nudge waiting customers",
    "since": "state_entered",
    "hours": 48,
    "conditions": {"all": [{"field": "case.state", "op": "eq", "value": "waiting"}]},
    "actions": [
        {"type": "add_tag", "tag": "nudged"},
        {"type": "add_comment", "body": "Are you still there?", "public": True},
    ],
}
OFFICE = {
    "time_zone": "America/New_York",
    "week": {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": [],
}


@pytest.fixture
async def settle(container: Container) -> AsyncIterator[Settle]:
    """Relay every committed event to the timers consumer group, and wait for it."""
    async with delivering_to(
        container, Timers(container.database, container.extensions).group()
    ) as settle:
        yield settle


@pytest.fixture
def travel(container: Container, monkeypatch: pytest.MonkeyPatch) -> Travel:
    """Move the worker's clock forward by ``ahead``, run every job due by then, and say how
    many of the desk's time-rule jobs ran (other tests' jobs share the table)."""

    async def attempts(desk: Desk) -> int:
        async with container.unit_of_work(desk.tenant.id) as uow:
            ran = select(ScheduledJob.attempts).where(ScheduledJob.kind == RUN)
            found = await uow.session.scalars(ran)
            return sum(found.all())

    async def run(desk: Desk, ahead: timedelta) -> int:
        def later() -> datetime:
            return datetime.now(UTC) + ahead

        monkeypatch.setattr("casedesk.store.jobs.utcnow", later)
        monkeypatch.setattr("casedesk.worker.timers.utcnow", later)
        timers = Timers(container.database, container.extensions)
        scheduler = Scheduler(container.database, {RUN: timers.run_job, SCAN: timers.scan_job})
        before = await attempts(desk)
        while await scheduler.run_once():
            pass
        return await attempts(desk) - before

    return run


async def _rule(desk: Desk, **spec: Any) -> dict[str, Any]:
    response = await desk.http.post("/api/v1/time-rules", json=NUDGE | spec, headers=desk.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _detail(desk: Desk, case_id: str) -> dict[str, Any]:
    response = await desk.http.get(f"/api/v1/cases/{case_id}", headers=desk.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _history(desk: Desk, case_id: str) -> list[dict[str, Any]]:
    response = await desk.http.get(f"/api/v1/cases/{case_id}/history", headers=desk.headers)
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _waiting_case(desk: Desk) -> dict[str, Any]:
    case = await desk.new_case()
    assert (await desk.act(case["id"], "start")).status_code == 200
    assert (await desk.act(case["id"], "wait")).status_code == 200
    return case


async def _jobs(container: Container, tenant_id: uuid.UUID) -> list[ScheduledJob]:
    async with container.unit_of_work(tenant_id) as uow:
        found = await uow.session.scalars(
            select(ScheduledJob).where(ScheduledJob.kind == RUN).order_by(ScheduledJob.due_at)
        )
        return list(found.all())


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_time_rules_are_managed_by_admins(
    desk: Desk, tenants: Tenants, client: httpx.AsyncClient
) -> None:
    made = await _rule(desk)
    second = await _rule(desk, name="first", position=0)
    listed = (await client.get("/api/v1/time-rules", headers=desk.headers)).json()
    assert [r["id"] for r in listed] == [second["id"], made["id"]]
    changed = await client.put(
        f"/api/v1/time-rules/{made['id']}",
        json=NUDGE | {"name": "renamed", "hours": 0, "minutes": 90},
        headers=desk.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["minutes"]) == ("renamed", 90)
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    refused = await client.post("/api/v1/time-rules", json=NUDGE, headers=agent.headers)
    assert refused.status_code == 403
    other = await tenants.create()
    url = f"/api/v1/time-rules/{made['id']}"
    assert (await client.get(url, headers=other.headers)).status_code == 404
    assert (await client.delete(url, headers=other.headers)).status_code == 404
    assert (await client.delete(url, headers=desk.headers)).status_code == 204
    assert (await client.get(url, headers=desk.headers)).status_code == 404


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"hours": 0, "minutes": 0}, "hours"),
        ({"since": "rated"}, "since"),
        (
            {"conditions": {"all": [{"field": "event.type", "op": "eq", "value": "x"}]}},
            "event.type",
        ),
        ({"conditions": {"field": "case.state", "op": "changed"}}, "changed"),
        ({"actions": []}, "actions"),
        ({"calendar": {"time_zone": "Nowhere/Land", "week": {}}}, "calendar"),
        ({"position": 10**12}, "position"),
    ],
)
async def test_a_bad_time_rule_is_422_saying_what_is_wrong(
    desk: Desk, change: dict[str, Any], named: str
) -> None:
    response = await desk.http.post("/api/v1/time-rules", json=NUDGE | change, headers=desk.headers)
    assert response.status_code == 422, response.text
    assert named in response.text


async def test_a_waiting_case_is_acted_on_once_when_its_time_has_passed(
    desk: Desk, settle: Settle, travel: Travel, container: Container
) -> None:
    rule = await _rule(desk)
    case = await _waiting_case(desk)
    await settle()
    entered = _at((await _detail(desk, case["id"]))["state_entered_at"])
    [job] = await _jobs(container, desk.tenant.id)
    assert job.due_at == entered + timedelta(hours=48)
    assert await travel(desk, timedelta(hours=47)) == 0
    assert "nudged" not in (await _detail(desk, case["id"]))["tags"]
    assert await travel(desk, timedelta(hours=49)) == 1
    detail = await _detail(desk, case["id"])
    assert "nudged" in detail["tags"]
    assert [c["body"] for c in detail["comments"]] == ["Are you still there?"]
    acted = [h for h in await _history(desk, case["id"]) if h["operator"]["type"] == "rule"]
    assert {h["operator"]["id"] for h in acted} == {rule["id"]}
    # Its own changes plan the case again for the same moment: it does not act twice.
    await settle()
    await travel(desk, timedelta(hours=100))
    assert [c["body"] for c in (await _detail(desk, case["id"]))["comments"]] == [
        "Are you still there?"
    ]


async def test_business_hours_move_the_due_time(
    desk: Desk, settle: Settle, container: Container
) -> None:
    await _rule(desk, hours=10, calendar=OFFICE)
    case = await _waiting_case(desk)
    await settle()
    entered = _at((await _detail(desk, case["id"]))["state_entered_at"])
    [job] = await _jobs(container, desk.tenant.id)
    expected = add_business_time(Calendar.model_validate(OFFICE), entered, timedelta(hours=10))
    assert job.due_at == expected
    assert job.due_at - entered > timedelta(hours=10)


async def test_leaving_the_state_in_time_cancels_it(
    desk: Desk, settle: Settle, travel: Travel, container: Container
) -> None:
    await _rule(desk)
    case = await _waiting_case(desk)
    await settle()
    assert (await desk.act(case["id"], "resume")).status_code == 200
    await settle()
    [job] = await _jobs(container, desk.tenant.id)
    assert job.status == "cancelled"
    assert await travel(desk, timedelta(hours=72)) == 0
    assert "nudged" not in (await _detail(desk, case["id"]))["tags"]


async def test_coming_back_to_the_state_counts_again_and_acts_again(
    desk: Desk, settle: Settle, travel: Travel
) -> None:
    await _rule(desk, actions=[{"type": "add_comment", "body": "ping"}])
    case = await _waiting_case(desk)
    await settle()
    assert await travel(desk, timedelta(hours=49)) == 1
    await desk.act(case["id"], "resume")
    await desk.act(case["id"], "wait")
    await settle()
    assert await travel(desk, timedelta(hours=47)) == 0
    assert await travel(desk, timedelta(hours=49)) == 1
    bodies = [c["body"] for c in (await _detail(desk, case["id"]))["comments"]]
    assert bodies == ["ping", "ping"]


async def test_a_new_rule_counts_for_cases_that_were_already_waiting(
    desk: Desk, settle: Settle, travel: Travel, container: Container
) -> None:
    waiting = await _waiting_case(desk)
    fresh = await desk.new_case()
    await settle()
    await _rule(desk)
    assert await travel(desk, timedelta(0)) == 0  # the scan plans, nothing is due yet
    jobs = await _jobs(container, desk.tenant.id)
    assert [job.case_id for job in jobs] == [uuid.UUID(waiting["id"])]
    await travel(desk, timedelta(hours=49))
    assert "nudged" in (await _detail(desk, waiting["id"]))["tags"]
    assert "nudged" not in (await _detail(desk, fresh["id"]))["tags"]


async def test_a_disabled_or_deleted_rule_does_nothing(
    desk: Desk, settle: Settle, travel: Travel
) -> None:
    rule = await _rule(desk)
    case = await _waiting_case(desk)
    await settle()
    await desk.http.put(
        f"/api/v1/time-rules/{rule['id']}", json=NUDGE | {"enabled": False}, headers=desk.headers
    )
    await travel(desk, timedelta(hours=49))
    assert "nudged" not in (await _detail(desk, case["id"]))["tags"]


async def test_a_refused_action_is_recorded_and_not_retried(
    desk: Desk, settle: Settle, travel: Travel, container: Container
) -> None:
    await _rule(desk, actions=[{"type": "apply_action", "action": "solve"}])
    case = await _waiting_case(desk)
    await settle()
    assert await travel(desk, timedelta(hours=49)) == 1
    refused = [h for h in await _history(desk, case["id"]) if h["code"] == "automation.refused"]
    assert len(refused) == 1
    assert "not allowed" in refused[0]["memo"]["reason"]
    [job] = await _jobs(container, desk.tenant.id)
    assert job.status == "done"
    assert await travel(desk, timedelta(hours=60)) == 0


async def test_the_rule_acts_under_the_trace_of_the_change_that_started_the_count(
    desk: Desk, settle: Settle, travel: Travel
) -> None:
    await _rule(desk)
    case = await desk.new_case()
    await desk.act(case["id"], "start")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    waited = await desk.act(
        case["id"],
        "wait",
        headers=desk.headers | {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    assert waited.status_code == 200
    await settle()
    await travel(desk, timedelta(hours=49))
    acted = [h for h in await _history(desk, case["id"]) if h["operator"]["type"] == "rule"]
    assert acted
    assert {h["trace_id"] for h in acted} == {trace_id}


async def test_two_workers_running_the_same_job_act_once(
    desk: Desk, settle: Settle, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _rule(desk, actions=[{"type": "add_comment", "body": "once"}])
    case = await _waiting_case(desk)
    await settle()
    [job] = await _jobs(container, desk.tenant.id)
    monkeypatch.setattr(
        "casedesk.worker.timers.utcnow", lambda: datetime.now(UTC) + timedelta(hours=49)
    )
    first = Timers(container.database, container.extensions)
    second = Timers(container.database, container.extensions)
    outcomes = await asyncio.gather(first.run_job(job), second.run_job(job), return_exceptions=True)
    assert sum(1 for outcome in outcomes if outcome is None) >= 1
    # A loser either saw the winner's record or failed its commit; either way, once.
    await first.run_job(job)
    bodies = [c["body"] for c in (await _detail(desk, case["id"]))["comments"]]
    assert bodies == ["once"]


async def test_counting_from_creation_plans_each_new_case(
    desk: Desk, settle: Settle, travel: Travel, container: Container
) -> None:
    await _rule(
        desk,
        since="created",
        hours=0,
        minutes=30,
        conditions={"field": "case.assignee_id", "op": "is_empty"},
        actions=[{"type": "set_priority", "priority": "high"}],
    )
    case = await desk.new_case()
    await settle()
    [job] = await _jobs(container, desk.tenant.id)
    assert job.due_at == _at(case["created_at"]) + timedelta(minutes=30)
    assert await travel(desk, timedelta(minutes=31)) == 1
    assert (await _detail(desk, case["id"]))["priority"] == "high"
