"""SLA policies and clocks: targets in business time, pauses, warnings, breaches, met."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from casedesk.bootstrap import Container
from casedesk.domain.automation.calendar import Calendar, add_business_time
from casedesk.domain.events import EVENTS
from casedesk.domain.identity.roles import Role
from casedesk.store.bus.base import Message
from casedesk.store.models import ScheduledJob
from casedesk.worker.consumers import Consumers
from casedesk.worker.relay import to_message
from casedesk.worker.scheduler import Scheduler
from casedesk.worker.sla import BREACH, WARNING, Sla
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.delivery import delivering_to

Settle = Callable[[], Awaitable[None]]
OFFICE = {
    "time_zone": "Europe/Berlin",
    "week": {
        day: [{"start": "09:00", "end": "17:00"}] for day in ("mon", "tue", "wed", "thu", "fri")
    },
    "holidays": [],
}


@pytest.fixture
async def settle(container: Container) -> AsyncIterator[Settle]:
    async with delivering_to(
        container, Sla(container.database, container.extensions).group()
    ) as settle:
        yield settle


async def _due_now(container: Container, tenant_id: uuid.UUID, kind: str) -> int:
    """Travel in time: the case's jobs of ``kind`` become due, then run them."""
    async with container.unit_of_work(tenant_id) as uow:
        await uow.begin_write()
        await uow.session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.kind == kind, ScheduledJob.status == "pending")
            .values(due_at=datetime.now().astimezone() - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
        await uow.commit()
    sla = Sla(container.database, container.extensions)
    ran = 0

    async def counted(job: ScheduledJob) -> None:
        nonlocal ran
        if job.kind == kind and job.tenant_id == tenant_id:
            ran += 1
        await sla.run_job(job)

    # Another module's job that comes due meanwhile is claimed too, and fails: not counted.
    scheduler = Scheduler(container.database, {WARNING: counted, BREACH: counted})
    while await scheduler.run_once():
        pass
    return ran


async def _policy(desk: Desk, **spec: Any) -> dict[str, Any]:
    body = {"name": "p", "first_response_minutes": 60, "resolution_minutes": 240} | spec
    response = await desk.http.post("/api/v1/sla-policies", json=body, headers=desk.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _clocks(desk: Desk, case_id: str) -> dict[str, dict[str, Any]]:
    detail = (await desk.http.get(f"/api/v1/cases/{case_id}", headers=desk.headers)).json()
    return {clock["metric"]: clock for clock in detail["sla"]}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_policies_are_managed_by_admins(
    desk: Desk, tenants: Tenants, client: httpx.AsyncClient
) -> None:
    made = await _policy(desk, template="question", priority="urgent", calendar=OFFICE)
    assert made["template"] == "question"
    assert made["calendar"]["time_zone"] == "Europe/Berlin"
    listed = (await client.get("/api/v1/sla-policies", headers=desk.headers)).json()
    assert [p["id"] for p in listed] == [made["id"]]
    one = await client.get(f"/api/v1/sla-policies/{made['id']}", headers=desk.headers)
    assert one.json()["name"] == made["name"]
    stranger = await tenants.create()
    hidden = await client.get(f"/api/v1/sla-policies/{made['id']}", headers=stranger.headers)
    assert hidden.status_code == 404
    twin = await client.post(
        "/api/v1/sla-policies",
        json={
            "name": "twin",
            "template": "question",
            "priority": "urgent",
            "resolution_minutes": 5,
        },
        headers=desk.headers,
    )
    assert twin.status_code == 409
    changed = await client.put(
        f"/api/v1/sla-policies/{made['id']}",
        json={"name": "renamed", "resolution_minutes": 30},
        headers=desk.headers,
    )
    assert changed.json()["name"] == "renamed"
    assert changed.json()["template"] is None
    viewer = await tenants.member(desk.tenant.id, Role.VIEWER)
    assert (
        await client.delete(f"/api/v1/sla-policies/{made['id']}", headers=viewer.headers)
    ).status_code == 403
    assert (
        await client.delete(f"/api/v1/sla-policies/{made['id']}", headers=desk.headers)
    ).status_code == 204


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"first_response_minutes": None, "resolution_minutes": None}, "first_response_minutes"),
        ({"template": "nope"}, "template"),
        ({"calendar": {"time_zone": "Mars/Olympus", "week": {}}}, "calendar.time_zone"),
        ({"warning_percent": 100}, "warning_percent"),
        ({"resolution_minutes": 0}, "resolution_minutes"),
    ],
)
async def test_a_bad_policy_is_422_naming_the_field(
    desk: Desk, spec: dict[str, Any], field: str
) -> None:
    body = {"name": "p", "first_response_minutes": 60, "resolution_minutes": 240} | spec
    response = await desk.http.post("/api/v1/sla-policies", json=body, headers=desk.headers)
    assert response.status_code == 422, response.text
    named = {e["field"] for e in response.json().get("errors", [])} | {response.json().get("field")}
    assert any(str(n).startswith(field) for n in named)


async def test_a_new_case_gets_clocks_from_the_most_specific_policy(
    desk: Desk, settle: Settle
) -> None:
    await _policy(desk, name="any")
    await _policy(
        desk,
        name="urgent",
        template="question",
        priority="urgent",
        first_response_minutes=10,
        resolution_minutes=30,
    )
    urgent = await desk.new_case(priority="urgent")
    normal = await desk.new_case()
    await settle()
    fast, slow = await _clocks(desk, urgent["id"]), await _clocks(desk, normal["id"])
    created = _at(urgent["created_at"])
    assert fast["first_response"]["status"] == "running"
    assert _at(fast["first_response"]["target_at"]) == created + timedelta(minutes=10)
    assert _at(fast["resolution"]["target_at"]) == created + timedelta(minutes=30)
    assert _at(slow["resolution"]["target_at"]) == _at(normal["created_at"]) + timedelta(
        minutes=240
    )


async def test_targets_count_business_hours(desk: Desk, settle: Settle) -> None:
    await _policy(desk, calendar=OFFICE, first_response_minutes=600)
    case = await desk.new_case()
    await settle()
    clock = (await _clocks(desk, case["id"]))["first_response"]
    expected = add_business_time(
        Calendar.model_validate(OFFICE), _at(case["created_at"]), timedelta(minutes=600)
    )
    assert _at(clock["target_at"]) == expected


async def test_warning_then_breach_are_said_once_on_the_case(
    desk: Desk, settle: Settle, container: Container
) -> None:
    await _policy(desk)
    case = await desk.new_case()
    await settle()
    assert await _due_now(container, desk.tenant.id, WARNING) == 2
    clocks = await _clocks(desk, case["id"])
    assert clocks["first_response"]["warned"] is True
    assert await _due_now(container, desk.tenant.id, BREACH) == 2
    assert await _due_now(container, desk.tenant.id, BREACH) == 0
    clocks = await _clocks(desk, case["id"])
    assert {c["status"] for c in clocks.values()} == {"breached"}
    types = [e["type"] for e in await desk.events() if e["subject"] == case["id"]]
    assert types.count("sla.warning") == 2
    assert types.count("sla.breached") == 2
    history = await desk.http.get(f"/api/v1/cases/{case['id']}/history", headers=desk.headers)
    codes = [h["code"] for h in history.json()["items"]]
    assert codes.count("sla.breached") == 2


async def test_a_public_agent_reply_meets_first_response_and_closing_meets_resolution(
    desk: Desk, settle: Settle, container: Container
) -> None:
    await _policy(desk)
    case = await desk.new_case()
    await settle()
    url = f"/api/v1/cases/{case['id']}/comments"
    await desk.http.post(url, json={"body": "internal", "public": False}, headers=desk.headers)
    await settle()
    assert (await _clocks(desk, case["id"]))["first_response"]["status"] == "running"
    await desk.http.post(url, json={"body": "hello"}, headers=desk.headers)
    await settle()
    clocks = await _clocks(desk, case["id"])
    assert clocks["first_response"]["status"] == "met"
    assert clocks["resolution"]["status"] == "running"
    await desk.act(case["id"], "start")
    await desk.act(case["id"], "close")
    await settle()
    assert (await _clocks(desk, case["id"]))["resolution"]["status"] == "met"
    assert await _due_now(container, desk.tenant.id, BREACH) == 0


async def test_a_pending_state_pauses_the_clock_and_leaving_it_resumes(
    desk: Desk, settle: Settle
) -> None:
    await _policy(desk, resolution_minutes=120)
    case = await desk.new_case()
    await desk.act(case["id"], "start")
    await settle()
    running = (await _clocks(desk, case["id"]))["resolution"]
    await desk.act(case["id"], "wait")
    await settle()
    paused = (await _clocks(desk, case["id"]))["resolution"]
    assert paused["status"] == "paused"
    assert paused["target_at"] is None
    left = paused["remaining_seconds"]
    assert 0 < left <= 120 * 60
    await desk.act(case["id"], "resume")
    await settle()
    resumed = (await _clocks(desk, case["id"]))["resolution"]
    assert resumed["status"] == "running"
    assert _at(resumed["target_at"]) >= _at(running["target_at"])


async def test_reopening_runs_the_resolution_clock_again_with_the_time_it_had_left(
    desk: Desk, settle: Settle, container: Container
) -> None:
    await _policy(desk, resolution_minutes=240)
    case = await desk.new_case()
    await desk.act(case["id"], "start")
    await desk.act(case["id"], "close")
    await settle()
    met = (await _clocks(desk, case["id"]))["resolution"]
    assert met["status"] == "met"
    assert 0 < met["remaining_seconds"] <= 240 * 60
    assert await _due_now(container, desk.tenant.id, BREACH) == 0
    assert (await desk.act(case["id"], "reopen")).status_code == 200
    await settle()
    clocks = await _clocks(desk, case["id"])
    again = clocks["resolution"]
    assert again["status"] == "running"
    assert again["met_at"] is None
    assert _at(again["target_at"]) >= _at(met["target_at"])
    assert clocks["first_response"]["status"] == "met"
    assert await _due_now(container, desk.tenant.id, BREACH) == 1
    assert (await _clocks(desk, case["id"]))["resolution"]["status"] == "breached"


async def _deliveries_of(container: Container, desk: Desk, case_id: str) -> list[Message]:
    """The case's committed events as the bus would carry them, in outbox order."""
    async with container.unit_of_work(desk.tenant.id) as uow:
        rows = await uow.outbox.of_subject(
            uuid.UUID(case_id), after=0, up_to=2**62, types=list(EVENTS.names())
        )
    return [to_message(row) for row in rows]


async def test_clocks_come_out_the_same_whatever_order_the_events_are_handled_in(
    desk: Desk, container: Container
) -> None:
    """A ``case.closed`` handled before its ``case.created`` (several deliveries at once on
    RabbitMQ) neither starts clocks on a closed case nor reports a false breach."""
    await _policy(desk)
    in_order, reversed_ = await desk.new_case(), await desk.new_case()
    for case in (in_order, reversed_):
        closed = await desk.act(case["id"], "solve")
        assert closed.status_code == 200, closed.text
    handle = Consumers(
        container.database, {"sla": Sla(container.database, container.extensions).group()}
    ).handler_for("sla")
    assert handle is not None
    for message in await _deliveries_of(container, desk, in_order["id"]):
        await handle(message)
    for message in reversed(await _deliveries_of(container, desk, reversed_["id"])):
        await handle(message)

    expected = await _clocks(desk, in_order["id"])
    assert {clock["status"] for clock in expected.values()} == {"met"}
    got = await _clocks(desk, reversed_["id"])
    assert {metric: c["status"] for metric, c in got.items()} == {
        metric: c["status"] for metric, c in expected.items()
    }
    assert await _due_now(container, desk.tenant.id, BREACH) == 0
    assert {clock["status"] for clock in (await _clocks(desk, reversed_["id"])).values()} == {"met"}


async def test_a_warning_run_twice_at_once_is_said_once(
    desk: Desk, settle: Settle, container: Container
) -> None:
    """Two runs of one warning job (a lost lease) lock the case before they read the clock."""
    await _policy(desk, first_response_minutes=60, resolution_minutes=None)
    case = await desk.new_case()
    await settle()
    async with container.unit_of_work(desk.tenant.id) as uow:
        job = await uow.jobs.find(f"{WARNING}:{case['id']}:first_response")
    assert job is not None
    sla = Sla(container.database, container.extensions)
    await asyncio.gather(sla.run_job(job), sla.run_job(job))
    types = [e["type"] for e in await desk.events() if e["subject"] == case["id"]]
    assert types.count("sla.warning") == 1
    history = await desk.http.get(f"/api/v1/cases/{case['id']}/history", headers=desk.headers)
    assert [h["code"] for h in history.json()["items"]].count("sla.warning") == 1


async def test_the_list_finds_cases_whose_sla_is_due_soon(
    desk: Desk, settle: Settle, tenants: Tenants
) -> None:
    await _policy(desk, name="any", first_response_minutes=60, resolution_minutes=600)
    due = await desk.new_case()
    await settle()
    created = _at(due["created_at"])

    async def due_before(moment: datetime) -> list[str]:
        listed = await desk.http.get(
            "/api/v1/cases",
            params={"sla_due_before": moment.isoformat()},
            headers=desk.headers,
        )
        assert listed.status_code == 200, listed.text
        return [case["id"] for case in listed.json()["items"]]

    assert await due_before(created + timedelta(minutes=90)) == [due["id"]]
    assert await due_before(created + timedelta(minutes=30)) == []
    replied = await desk.http.post(
        f"/api/v1/cases/{due['id']}/comments", json={"body": "on it"}, headers=desk.headers
    )
    assert replied.status_code == 201
    await settle()
    assert await due_before(created + timedelta(minutes=90)) == [], "a met clock is not due"
    assert await due_before(created + timedelta(minutes=700)) == [due["id"]]
