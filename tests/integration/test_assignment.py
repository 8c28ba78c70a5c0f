"""Automatic assignment: availability, a queue's mode on create and transfer, the rule action."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from casedesk.bootstrap import Container
from casedesk.domain.identity.roles import Role
from casedesk.worker.automation import Automation
from tests.conftest import Member, Tenants
from tests.support.cases import Desk
from tests.support.delivery import Settle, delivering_to


@pytest.fixture
async def settle(container: Container) -> AsyncIterator[Settle]:
    async with delivering_to(
        container, Automation(container.database, container.extensions, rules_ttl=0).group()
    ) as settle:
        yield settle


async def _away(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await http.put(
        "/api/v1/me/availability", json={"availability": "away"}, headers=headers
    )
    assert response.status_code == 200, response.text


async def _agents(desk: Desk, tenants: Tenants, count: int) -> list[Member]:
    """``count`` available agents; the desk's admin is away, so only they are candidates."""
    await _away(desk.http, desk.headers)
    return [await tenants.member(desk.tenant.id, Role.AGENT) for _ in range(count)]


async def _mode(desk: Desk, queue: str, mode: str) -> None:
    response = await desk.http.patch(
        f"/api/v1/queues/{queue}", json={"assignment": mode}, headers=desk.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["assignment"] == mode


async def test_availability_is_each_users_own_and_checked(
    desk: Desk, tenants: Tenants, client: httpx.AsyncClient
) -> None:
    viewer = await tenants.member(desk.tenant.id, Role.VIEWER)
    mine = await client.get("/api/v1/me/availability", headers=viewer.headers)
    assert mine.json() == {"availability": "available"}
    await _away(client, viewer.headers)
    assert (await client.get("/api/v1/me/availability", headers=viewer.headers)).json() == {
        "availability": "away"
    }
    admins = await client.get("/api/v1/me/availability", headers=desk.headers)
    assert admins.json() == {"availability": "available"}
    bad = await client.put(
        "/api/v1/me/availability", json={"availability": "asleep"}, headers=viewer.headers
    )
    assert bad.status_code == 422


async def test_round_robin_gives_each_available_agent_one_case_in_three(
    desk: Desk, tenants: Tenants
) -> None:
    agents = await _agents(desk, tenants, 3)
    away = await tenants.member(desk.tenant.id, Role.AGENT)
    await _away(desk.http, away.headers)
    await _mode(desk, "support", "round_robin")
    cases = [await desk.new_case() for _ in range(6)]
    counts = Counter(case["assignee_id"] for case in cases)
    assert counts == {str(agent.id): 2 for agent in agents}
    # in turn: each three in a row go to three different agents
    assert len({case["assignee_id"] for case in cases[:3]}) == 3
    assert str(away.id) not in counts


async def test_least_loaded_picks_the_agent_with_fewest_open_cases(
    desk: Desk, tenants: Tenants
) -> None:
    busy, free = await _agents(desk, tenants, 2)
    for _ in range(2):
        await desk.new_case(assignee_id=str(busy.id))
    await desk.new_case(assignee_id=str(free.id))
    await _mode(desk, "support", "least_loaded")
    first = await desk.new_case()
    assert first["assignee_id"] == str(free.id)  # 1 open against 2
    second = await desk.new_case()  # 2 against 2: either
    other = ({str(busy.id), str(free.id)} - {second["assignee_id"]}).pop()
    third = await desk.new_case()
    assert third["assignee_id"] == other  # 3 against 2
    extra = await desk.new_case(assignee_id=other)  # other 4, the second's 3
    fourth = await desk.new_case()
    assert fourth["assignee_id"] == second["assignee_id"]  # now 4 against 4
    for case in (extra, third):
        assert (await desk.act(case["id"], "solve")).status_code == 200
    fifth = await desk.new_case()
    assert fifth["assignee_id"] == other  # 2 open against 4: solved cases are no load


async def test_nobody_available_leaves_the_case_unassigned_and_manual_assigns_none(
    desk: Desk, tenants: Tenants
) -> None:
    (agent,) = await _agents(desk, tenants, 1)
    assert (await desk.new_case())["assignee_id"] is None  # support is manual
    await _mode(desk, "support", "round_robin")
    await _away(desk.http, agent.headers)
    assert (await desk.new_case())["assignee_id"] is None
    explicit = await desk.new_case(assignee_id=str(agent.id))
    assert explicit["assignee_id"] == str(agent.id)  # a named assignee is kept


async def test_transfer_into_an_automatic_queue_assigns_an_unassigned_case(
    desk: Desk, tenants: Tenants
) -> None:
    (agent,) = await _agents(desk, tenants, 1)
    await _mode(desk, "billing", "least_loaded")
    case = await desk.new_case()
    assert case["assignee_id"] is None
    moved = await desk.http.post(
        f"/api/v1/cases/{case['id']}/transfer", json={"queue": "billing"}, headers=desk.headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["assignee_id"] == str(agent.id)


async def test_queue_mode_is_admins_and_validated(
    desk: Desk, tenants: Tenants, client: httpx.AsyncClient
) -> None:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    denied = await client.patch(
        "/api/v1/queues/support", json={"assignment": "round_robin"}, headers=agent.headers
    )
    assert denied.status_code == 403
    bad = await client.patch(
        "/api/v1/queues/support", json={"assignment": "random"}, headers=desk.headers
    )
    assert bad.status_code == 422
    created = await client.post(
        "/api/v1/queues",
        json={"code": "vip", "name": "VIP", "assignment": "round_robin"},
        headers=desk.headers,
    )
    assert created.json()["assignment"] == "round_robin"
    listed = {
        q["code"]: q["assignment"]
        for q in (await client.get("/api/v1/queues", headers=desk.headers)).json()
    }
    assert listed == {"billing": "manual", "support": "manual", "vip": "round_robin"}
    other = await tenants.create()
    missing = await client.patch(
        "/api/v1/queues/support", json={"assignment": "round_robin"}, headers=other.headers
    )
    assert missing.status_code == 404


async def test_rule_assigns_by_strategy(desk: Desk, tenants: Tenants, settle: Settle) -> None:
    busy, free = await _agents(desk, tenants, 2)
    await desk.new_case(assignee_id=str(busy.id))
    rule: dict[str, Any] = {
        "name": "spread urgent",
        "on": ["case.created"],
        "conditions": {"field": "case.priority", "op": "eq", "value": "urgent"},
        "actions": [{"type": "assign", "strategy": "least_loaded"}],
    }
    saved = await desk.http.post("/api/v1/rules", json=rule, headers=desk.headers)
    assert saved.status_code == 201, saved.text
    case = await desk.new_case(priority="urgent")
    assert case["assignee_id"] is None
    await settle()
    after = await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)
    assert after.json()["assignee_id"] == str(free.id)
    both = rule | {
        "actions": [{"type": "assign", "strategy": "round_robin", "user_id": str(busy.id)}]
    }
    refused = await desk.http.post("/api/v1/rules", json=both, headers=desk.headers)
    assert refused.status_code == 422


async def test_round_robin_stays_even_under_simultaneous_creates(
    desk: Desk, tenants: Tenants
) -> None:
    """The pointer is a locked queue row: creates at the same moment wait their turn."""
    agents = await _agents(desk, tenants, 3)
    await _mode(desk, "support", "round_robin")
    results = await asyncio.gather(*(desk.create_case(title=f"Case {n}") for n in range(12)))
    assert [r.status_code for r in results] == [201] * 12, [r.text for r in results]
    counts = Counter(r.json()["assignee_id"] for r in results)
    assert counts == {str(agent.id): 4 for agent in agents}


async def test_a_queue_s_members_are_its_only_candidates(desk: Desk, tenants: Tenants) -> None:
    ana, bo, cy = await _agents(desk, tenants, 3)
    await _mode(desk, "support", "round_robin")
    url = "/api/v1/queues/support/members"
    assert (await desk.http.get(url, headers=desk.headers)).json() == {"user_ids": []}
    chosen = sorted([str(ana.id), str(cy.id)])
    set_ = await desk.http.put(url, json={"user_ids": chosen}, headers=desk.headers)
    assert set_.status_code == 200, set_.text
    assert sorted(set_.json()["user_ids"]) == chosen
    given = Counter()
    for _ in range(4):
        given[(await desk.new_case())["assignee_id"]] += 1
    assert given == Counter({str(ana.id): 2, str(cy.id): 2}), "bo works another queue"
    cleared = await desk.http.put(url, json={"user_ids": []}, headers=desk.headers)
    assert cleared.json() == {"user_ids": []}
    assert {(await desk.new_case())["assignee_id"] for _ in range(3)} == {
        str(ana.id),
        str(bo.id),
        str(cy.id),
    }, "a queue without members is everyone's"


async def test_members_are_chosen_by_admins_among_agents(desk: Desk, tenants: Tenants) -> None:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    viewer = await tenants.member(desk.tenant.id, Role.VIEWER)
    url = "/api/v1/queues/support/members"
    refused = await desk.http.put(url, json={"user_ids": [str(agent.id)]}, headers=agent.headers)
    assert refused.status_code == 403
    for user_ids in ([str(viewer.id)], ["01a23ab1-0000-7000-8000-000000000000"], ["nope"]):
        bad = await desk.http.put(url, json={"user_ids": user_ids}, headers=desk.headers)
        assert bad.status_code == 422, user_ids
        assert "user_ids" in bad.text
    assert (await desk.http.get(url, headers=desk.headers)).json() == {"user_ids": []}
    stranger = await tenants.create()
    other = await desk.http.put(url, json={"user_ids": []}, headers=stranger.headers)
    assert other.status_code == 404
    unknown = await desk.http.get("/api/v1/queues/nowhere/members", headers=desk.headers)
    assert unknown.status_code == 404
