"""Races on one case and on one tenant's numbering, run for real on each database."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from casedesk.domain.extensions.scenes import ACTIVITY_AFTER
from tests.conftest import Tenants
from tests.support.cases import Desk, make_desk


async def test_two_simultaneous_transitions_exactly_one_wins(desk: Desk) -> None:
    for _ in range(5):
        case = await desk.new_case()
        await desk.act(case["id"], "start")
        results = await asyncio.gather(desk.act(case["id"], "wait"), desk.act(case["id"], "close"))
        codes = sorted(response.status_code for response in results)
        assert codes[0] == 200, [r.text for r in results]
        assert codes[1] in (409, 412), [r.text for r in results]
        winner = next(r for r in results if r.status_code == 200).json()
        final = await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)
        assert final.json()["state"] == winner["state"]
        assert final.json()["version"] == 3
        history = await desk.http.get(f"/api/v1/cases/{case['id']}/history", headers=desk.headers)
        assert [h["code"] for h in history.json()["items"]] == [
            "case.create",
            "case.action",
            "case.action",
        ]


async def test_the_same_action_twice_at_once_applies_once(desk: Desk) -> None:
    case = await desk.new_case()
    results = await asyncio.gather(*(desk.act(case["id"], "start") for _ in range(4)))
    codes = sorted(response.status_code for response in results)
    assert codes.count(200) == 1, [r.text for r in results]
    assert set(codes[1:]) <= {409, 412}
    events = [e for e in await desk.events() if e["subject"] == case["id"]]
    assert [e["type"] for e in events].count("case.state_changed") == 1


async def test_concurrent_creates_get_distinct_consecutive_numbers(desk: Desk) -> None:
    results = await asyncio.gather(*(desk.create_case(title=f"Case {n}") for n in range(200)))
    assert [r.status_code for r in results] == [201] * 200, {
        r.text for r in results if r.status_code != 201
    }
    numbers = sorted(r.json()["number"] for r in results)
    assert numbers == list(range(1, 201))
    created = [e for e in await desk.events() if e["type"] == "case.created"]
    assert len(created) == 200


async def test_concurrent_creates_with_one_external_ref_make_one_case(desk: Desk) -> None:
    results = await asyncio.gather(
        *(desk.create_case(channel="email", external_ref="<same@mail>") for _ in range(8))
    )
    assert {r.status_code for r in results} <= {200, 201}
    assert [r.status_code for r in results].count(201) == 1
    assert len({r.json()["id"] for r in results}) == 1


async def test_concurrent_creates_with_one_idempotency_key_make_one_case(desk: Desk) -> None:
    headers = desk.headers | {"Idempotency-Key": "same-key"}
    body = {"template": "question", "title": "Once", "form": {"product": "p"}}
    results = await asyncio.gather(
        *(desk.http.post("/api/v1/cases", json=body, headers=headers) for _ in range(6))
    )
    codes = [r.status_code for r in results]
    assert set(codes) <= {201, 409}, [r.text for r in results]
    ids = {r.json()["id"] for r in results if r.status_code == 201}
    assert len(ids) == 1
    listed = await desk.http.get("/api/v1/cases", headers=desk.headers)
    assert len(listed.json()["items"]) == 1


async def test_two_accepts_of_one_task_in_live_transactions_exactly_one_wins(
    backend: str, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    """Both accepts read the task as pending before either writes (an extension holds each
    one's transaction open until the other has read too); the task's version lets exactly
    one of them write. The case itself does not change (it is already the agent's), so
    only the task can tell them apart."""
    if backend == "sqlite":
        pytest.skip("SQLite writers take the write lock at BEGIN: the second accept waits")
    edition = f"race-{uuid.uuid4().hex[:8]}"
    both_read = asyncio.Barrier(2)

    async def wait_for_the_other(activity: str, case: object) -> None:
        if activity == "task.accept":
            async with asyncio.timeout(10):
                await both_read.wait()

    tenants.container.extensions.add(ACTIVITY_AFTER, edition, wait_for_the_other)
    tenant = await tenants.create(edition=edition)
    desk = await make_desk(client, tenant, tenants.container)
    case = await desk.new_case()
    transfer = await desk.http.post(
        f"/api/v1/cases/{case['id']}/transfer",
        json={"assignee_id": str(tenant.admin_id)},
        headers=desk.headers,
    )
    assert transfer.status_code == 200, transfer.text
    url = f"/api/v1/cases/{case['id']}/accept"
    results = await asyncio.gather(
        desk.http.post(url, headers=desk.headers), desk.http.post(url, headers=desk.headers)
    )
    assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    history = await desk.http.get(f"/api/v1/cases/{case['id']}/history", headers=desk.headers)
    assert [h["code"] for h in history.json()["items"]].count("task.accept") == 1
    accepted = [e for e in await desk.events() if e["type"] == "task.accepted"]
    assert [e["subject"] for e in accepted].count(case["id"]) == 1
