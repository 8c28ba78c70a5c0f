"""Dead letters replayed by a worker after the fault is fixed, or discarded, by admins only."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from casedesk.bootstrap import Container, job_handlers
from casedesk.domain.automation.rules import AddTag
from casedesk.domain.identity.roles import Role
from casedesk.kit.ids import uuid7
from casedesk.store.models import DeadLetter
from casedesk.worker import actions as actions_module
from casedesk.worker.scheduler import Scheduler
from tests.conftest import Tenants
from tests.support.cases import Desk, make_desk
from tests.support.delivery import Settle


@pytest.fixture
def mend_tag_service(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """The add_tag action fails from the start of the test until this is called."""

    async def broken(ctx: Any, case_id: Any, action: Any) -> None:
        raise RuntimeError("the tag service is down")

    working = actions_module.ACTIONS[AddTag]
    monkeypatch.setitem(actions_module.ACTIONS, AddTag, broken)
    return lambda: monkeypatch.setitem(actions_module.ACTIONS, AddTag, working)


async def _rules(desk: Desk) -> None:
    for spec in (
        {"name": "tagger", "on": ["case.created"], "actions": [{"type": "add_tag", "tag": "vip"}]},
        {
            "name": "noter",
            "on": ["case.created"],
            "actions": [{"type": "add_comment", "body": "hi"}],
        },
    ):
        response = await desk.http.post("/api/v1/rules", json=spec, headers=desk.headers)
        assert response.status_code == 201, response.text


async def _dead_letter_of(desk: Desk, case_id: str, **params: Any) -> dict[str, Any]:
    response = await desk.http.get("/api/v1/dead-letters", params=params, headers=desk.headers)
    assert response.status_code == 200, response.text
    mine = [d for d in response.json()["items"] if d["envelope"]["subject"] == case_id]
    assert len(mine) == 1, mine
    found: dict[str, Any] = mine[0]
    return found


async def _dead_case(desk: Desk, settle: Settle) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case whose tagging rule failed on every attempt: the case and its dead letter."""
    await _rules(desk)
    case = await desk.new_case()
    await settle()
    return case, await _dead_letter_of(desk, case["id"], group="automation")


async def _run_jobs(container: Container) -> None:
    scheduler = Scheduler(container.database, job_handlers(container))
    while await scheduler.run_once():
        pass


async def _case(desk: Desk, case_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (
        await desk.http.get(f"/api/v1/cases/{case_id}", headers=desk.headers)
    ).json()
    return found


async def _replay(desk: Desk, dead_letter_id: str, headers: dict[str, str] | None = None) -> Any:
    return await desk.http.post(
        f"/api/v1/dead-letters/{dead_letter_id}/replay", headers=headers or desk.headers
    )


async def test_a_dead_letter_replayed_after_the_fix_acts_once_and_only_where_it_had_not(
    desk: Desk, settle: Settle, container: Container, mend_tag_service: Callable[[], None]
) -> None:
    case, dead = await _dead_case(desk, settle)
    assert dead["replay_status"] is None
    assert (await _case(desk, case["id"]))["tags"] == []

    mend_tag_service()
    asked = await _replay(desk, dead["id"])
    assert asked.status_code == 202, asked.text
    assert asked.json()["replay_status"] == "pending"
    again = await _replay(desk, dead["id"])  # asking twice is one replay
    assert again.status_code == 202
    await _run_jobs(container)
    await settle()

    after = await _case(desk, case["id"])
    assert after["tags"] == ["vip"]
    assert [c["body"] for c in after["comments"]] == ["hi"]  # the other rule did not act again
    replayed = (
        await desk.http.get(f"/api/v1/dead-letters/{dead['id']}", headers=desk.headers)
    ).json()
    assert replayed["replay_status"] == "succeeded"
    assert replayed["replayed_at"] is not None
    assert replayed["replay_error"] is None

    done = await _replay(desk, dead["id"])
    assert done.status_code == 409
    assert "already replayed" in done.json()["detail"]
    await _dead_letter_of(desk, case["id"], replay_status="succeeded")
    never = await desk.http.get(
        "/api/v1/dead-letters", params={"replay_status": "never"}, headers=desk.headers
    )
    assert dead["id"] not in {d["id"] for d in never.json()["items"]}


async def test_a_replay_that_fails_again_says_why_and_a_bulk_replay_takes_it_up(
    desk: Desk, settle: Settle, container: Container, mend_tag_service: Callable[[], None]
) -> None:
    case, dead = await _dead_case(desk, settle)
    assert (await _replay(desk, dead["id"])).status_code == 202
    await _run_jobs(container)
    failed = await _dead_letter_of(desk, case["id"], replay_status="failed")
    assert "tag service is down" in failed["replay_error"]
    assert (await _case(desk, case["id"]))["tags"] == []

    mend_tag_service()
    bulk = await desk.http.post(
        "/api/v1/dead-letters/replay", json={"group": "automation"}, headers=desk.headers
    )
    assert bulk.status_code == 202, bulk.text
    assert dead["id"] in bulk.json()["ids"]
    assert bulk.json()["scheduled"] == len(bulk.json()["ids"])
    await _run_jobs(container)
    assert (await _dead_letter_of(desk, case["id"]))["replay_status"] == "succeeded"
    assert (await _case(desk, case["id"]))["tags"] == ["vip"]
    nothing_left = await desk.http.post(
        "/api/v1/dead-letters/replay", json={"group": "automation"}, headers=desk.headers
    )
    assert dead["id"] not in nothing_left.json()["ids"]


async def test_a_discarded_dead_letter_is_gone_and_its_asked_replay_called_off(
    desk: Desk, settle: Settle, container: Container, mend_tag_service: Callable[[], None]
) -> None:
    _, dead = await _dead_case(desk, settle)
    assert (await _replay(desk, dead["id"])).status_code == 202
    url = f"/api/v1/dead-letters/{dead['id']}"
    assert (await desk.http.delete(url, headers=desk.headers)).status_code == 204
    assert (await desk.http.get(url, headers=desk.headers)).status_code == 404
    assert (await _replay(desk, dead["id"])).status_code == 404
    assert (await desk.http.delete(url, headers=desk.headers)).status_code == 404
    async with container.unit_of_work(desk.tenant.id) as uow:
        job = await uow.jobs.find(f"dead-letter:{dead['id']}")
    assert job is not None
    assert job.status == "cancelled"


async def test_a_dead_letter_of_a_group_that_no_longer_runs_fails_its_replay_clearly(
    desk: Desk, container: Container
) -> None:
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        dead = uow.dead_letters.add(
            DeadLetter(
                consumer_group="retired",
                event_id=uuid7(),
                type="case.created",
                sequence=1,
                attempts=5,
                error="boom",
                envelope={"subject": str(uuid.uuid4()), "traceparent": None, "data": {}},
            )
        )
        await uow.commit()
    assert (await _replay(desk, str(dead.id))).status_code == 202
    await _run_jobs(container)
    shown = (await desk.http.get(f"/api/v1/dead-letters/{dead.id}", headers=desk.headers)).json()
    assert shown["replay_status"] == "failed"
    assert "no consumer group 'retired'" in shown["replay_error"]


async def test_dead_letters_are_for_admins_and_invisible_to_other_tenants(
    desk: Desk,
    settle: Settle,
    client: Any,
    tenants: Tenants,
    mend_tag_service: Callable[[], None],
) -> None:
    case, dead = await _dead_case(desk, settle)
    url = f"/api/v1/dead-letters/{dead['id']}"
    viewer = (await tenants.member(desk.tenant.id, Role.VIEWER)).headers
    assert (await desk.http.get(url, headers=viewer)).status_code == 403
    assert (await _replay(desk, dead["id"], viewer)).status_code == 403
    assert (await desk.http.delete(url, headers=viewer)).status_code == 403
    bulk = await desk.http.post("/api/v1/dead-letters/replay", json={}, headers=viewer)
    assert bulk.status_code == 403

    other = await make_desk(client, await tenants.create(), tenants.container)
    assert (await desk.http.get(url, headers=other.headers)).status_code == 404
    assert (await _replay(desk, dead["id"], other.headers)).status_code == 404
    assert (await desk.http.delete(url, headers=other.headers)).status_code == 404
    theirs = await desk.http.post("/api/v1/dead-letters/replay", json={}, headers=other.headers)
    assert theirs.json() == {"scheduled": 0, "ids": []}
    assert (await _dead_letter_of(desk, case["id"]))["replay_status"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"group": "x" * 64}, "group"),
        ({"everything": True}, "everything"),
    ],
)
async def test_a_bad_bulk_replay_is_422_naming_the_field(
    desk: Desk, body: dict[str, Any], field: str
) -> None:
    response = await desk.http.post("/api/v1/dead-letters/replay", json=body, headers=desk.headers)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_an_unknown_replay_status_filter_is_422(desk: Desk) -> None:
    response = await desk.http.get(
        "/api/v1/dead-letters", params={"replay_status": "resurrected"}, headers=desk.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "replay_status"


async def test_asking_again_revives_a_replay_whose_job_was_lost(
    desk: Desk, settle: Settle, container: Container, mend_tag_service: Callable[[], None]
) -> None:
    case, dead = await _dead_case(desk, settle)
    mend_tag_service()
    assert (await _replay(desk, dead["id"])).status_code == 202
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        job = await uow.jobs.find(f"dead-letter:{dead['id']}")
        assert job is not None
        job.status = "failed"  # its worker gave up on it for good
        await uow.commit()
    await _run_jobs(container)
    assert (await _dead_letter_of(desk, case["id"]))["replay_status"] == "pending"
    assert (await _replay(desk, dead["id"])).status_code == 202
    await _run_jobs(container)
    assert (await _dead_letter_of(desk, case["id"]))["replay_status"] == "succeeded"
    assert (await _case(desk, case["id"]))["tags"] == ["vip"]
