"""Bulk changes from the case list: each selected case runs the same activity as a single
change, in its own transaction; the result page says which went through and why others not."""

from __future__ import annotations

import httpx
import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.cases import Desk, make_desk
from tests.support.web import hidden, signed_in

pytestmark = pytest.mark.backends("sqlite")


async def _csrf(http: httpx.AsyncClient) -> str:
    page = await http.get("/app/cases?view=open")
    assert page.status_code == 200, page.text
    return hidden(page.text, "csrf_token")


async def test_the_list_offers_a_checkbox_per_case_and_select_all(
    desk: Desk, tenants: Tenants
) -> None:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    await signed_in(desk.http, desk.tenant, agent.id)
    case = await desk.new_case(title="Pick me")
    page = await desk.http.get("/app/cases?view=open")
    assert f'name="case" value="{case["number"]}"' in page.text
    assert "data-select-all" in page.text
    assert 'action="/app/cases/bulk"' in page.text


async def test_bulk_assign_reports_the_done_and_the_refused_with_the_reason(
    desk: Desk, tenants: Tenants
) -> None:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    await signed_in(desk.http, desk.tenant, agent.id)
    cases = [await desk.new_case(title=f"Bulk {n}") for n in range(3)]
    for action in ("start", "close"):
        acted = await desk.act(cases[2]["id"], action)
        assert acted.status_code == 200, acted.text
    other = await make_desk(desk.http, await tenants.create(), tenants.container)
    for _ in range(4):
        theirs = await other.new_case(title="Not yours")
    foreign = theirs["number"]
    done = await desk.http.post(
        "/app/cases/bulk",
        data={
            "csrf_token": await _csrf(desk.http),
            "operation": "assign",
            "assignee": str(agent.id),
            "case": [*(str(c["number"]) for c in cases), str(foreign)],
        },
    )
    assert done.status_code == 200, done.text
    assert "Changed: 2" in done.text
    assert "Not changed: 2" in done.text
    assert "a closed case cannot be transferred" in done.text
    assert f"#{foreign}</a>: <span>no such case" in done.text
    for case, expected in zip(cases, (str(agent.id), str(agent.id), None), strict=True):
        shown = await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)
        assert shown.json()["assignee_id"] == expected


async def test_bulk_tag_transfer_and_action_run_their_activities(
    desk: Desk, tenants: Tenants
) -> None:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    await signed_in(desk.http, desk.tenant, agent.id)
    cases = [await desk.new_case(title=f"Many {n}") for n in range(2)]
    numbers = [str(c["number"]) for c in cases]
    csrf = await _csrf(desk.http)
    for change in (
        {"operation": "tag", "tag": "vip"},
        {"operation": "transfer", "queue": "billing"},
        {"operation": "action", "action": "start"},
    ):
        posted = await desk.http.post(
            "/app/cases/bulk", data={"csrf_token": csrf, "case": numbers, **change}
        )
        assert posted.status_code == 200, posted.text
        assert "Changed: 2" in posted.text
    for case in cases:
        shown = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
        assert (shown["tags"], shown["queue"], shown["state"]) == (["vip"], "billing", "open")


async def test_bulk_needs_the_token_and_an_agent(desk: Desk, tenants: Tenants) -> None:
    case = await desk.new_case(title="Hands off")
    viewer = await tenants.member(desk.tenant.id, Role.VIEWER)
    await signed_in(desk.http, desk.tenant, viewer.id)
    data = {"operation": "tag", "tag": "x", "case": [str(case["number"])]}
    forged = await desk.http.post("/app/cases/bulk", data=data)
    assert forged.status_code == 403
    refused = await desk.http.post(
        "/app/cases/bulk", data={"csrf_token": await _csrf(desk.http), **data}
    )
    assert refused.status_code == 403
    shown = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert shown["tags"] == []


async def test_bulk_without_a_choice_is_a_422_naming_it(desk: Desk, tenants: Tenants) -> None:
    case = await desk.new_case(title="Hands off")
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    await signed_in(desk.http, desk.tenant, agent.id)
    csrf = await _csrf(desk.http)
    none = await desk.http.post("/app/cases/bulk", data={"csrf_token": csrf, "operation": "tag"})
    assert none.status_code == 422
    assert "write the tag first" in none.text
    bad = await desk.http.post(
        "/app/cases/bulk",
        data={"csrf_token": csrf, "operation": "assign", "assignee": "x", "case": ["1"]},
    )
    assert bad.status_code == 422
    assert "choose the assignee" in bad.text
    for number in ("²", "0", "x1", str(2**63)):
        not_a_number = await desk.http.post(
            "/app/cases/bulk",
            data={"csrf_token": csrf, "operation": "tag", "tag": "vip", "case": [number]},
        )
        assert not_a_number.status_code == 422, number
        assert "is not a case number" in not_a_number.text
    shown = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert shown["tags"] == []
