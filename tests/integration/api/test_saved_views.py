"""Saved views over HTTP on every database: a user's own views are theirs alone, shared
views are everyone's and made by admins, and what a view names must exist."""

from __future__ import annotations

import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Member, Tenants
from tests.support.cases import Desk

URL = "/api/v1/views"


@pytest.fixture
async def agents(desk: Desk, tenants: Tenants) -> tuple[Member, Member]:
    return (
        await tenants.member(desk.tenant.id, Role.AGENT),
        await tenants.member(desk.tenant.id, Role.AGENT),
    )


async def test_a_personal_view_is_its_owner_s_alone(
    desk: Desk, agents: tuple[Member, Member]
) -> None:
    ana, bo = agents
    body = {"name": "Urgent billing", "filters": {"queue": "billing", "priority": "urgent"}}
    made = await desk.http.post(URL, json=body, headers=ana.headers)
    assert made.status_code == 201, made.text
    view = made.json()
    assert view["shared"] is False
    assert view["filters"] == {"base": "open", "queue": "billing", "priority": "urgent"}
    assert [v["id"] for v in (await desk.http.get(URL, headers=ana.headers)).json()] == [view["id"]]
    assert (await desk.http.get(URL, headers=bo.headers)).json() == []
    for method in ("GET", "DELETE"):
        hidden = await desk.http.request(method, f"{URL}/{view['id']}", headers=bo.headers)
        assert hidden.status_code == 404, method
    renamed = await desk.http.put(
        f"{URL}/{view['id']}", json=body | {"name": "Hot billing"}, headers=ana.headers
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Hot billing"
    gone = await desk.http.delete(f"{URL}/{view['id']}", headers=ana.headers)
    assert gone.status_code == 204
    assert (await desk.http.get(f"{URL}/{view['id']}", headers=ana.headers)).status_code == 404


async def test_shared_views_are_made_by_admins_and_seen_by_all(
    desk: Desk, agents: tuple[Member, Member], tenants: Tenants
) -> None:
    ana, _ = agents
    body = {"name": "Waiting", "filters": {"base": "waiting"}, "shared": True}
    refused = await desk.http.post(URL, json=body, headers=ana.headers)
    assert refused.status_code == 403
    shared = await desk.http.post(URL, json=body, headers=desk.headers)
    assert shared.status_code == 201, shared.text
    mine = await desk.http.post(URL, json={"name": "Mine"}, headers=ana.headers)
    listed = [v["name"] for v in (await desk.http.get(URL, headers=ana.headers)).json()]
    assert listed == ["Waiting", "Mine"], "shared first"
    change = await desk.http.put(
        f"{URL}/{shared.json()['id']}", json=body | {"name": "x"}, headers=ana.headers
    )
    assert change.status_code == 403
    assert mine.status_code == 201
    stranger = await tenants.create()
    other = await desk.http.get(f"{URL}/{shared.json()['id']}", headers=stranger.headers)
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "filters": {"base": "everything"}}, "base"),
        ({"name": "x", "filters": {"queue": "nowhere"}}, "filters.queue"),
        ({"name": "x", "filters": {"template": "nothing"}}, "filters.template"),
        ({"name": "x", "filters": {"colour": "red"}}, "colour"),
        ({"name": "x", "sort": "sideways"}, "sort"),
    ],
)
async def test_a_bad_view_is_422_naming_the_field(
    desk: Desk, body: dict[str, object], field: str
) -> None:
    refused = await desk.http.post(URL, json=body, headers=desk.headers)
    assert refused.status_code == 422, refused.text
    assert field in refused.text
    assert (await desk.http.get(URL, headers=desk.headers)).json() == []


async def test_views_answer_their_counts_when_asked(
    desk: Desk, agents: tuple[Member, Member]
) -> None:
    ana, _ = agents
    for priority in ("urgent", "urgent", "low"):
        await desk.new_case(priority=priority)
    urgent = {"name": "Urgent", "filters": {"priority": "urgent"}}
    everything = {"name": "All", "filters": {"base": "recent"}}
    for body in (urgent, everything):
        assert (await desk.http.post(URL, json=body, headers=ana.headers)).status_code == 201
    plain = (await desk.http.get(URL, headers=ana.headers)).json()
    assert all(view["count"] is None for view in plain)
    counted = await desk.http.get(URL, params={"counts": "true"}, headers=ana.headers)
    assert counted.status_code == 200, counted.text
    by_name = {view["name"]: (view["count"], view["count_capped"]) for view in counted.json()}
    assert by_name == {"Urgent": (2, False), "All": (3, False)}
    wrong = await desk.http.get(URL, params={"counts": "maybe"}, headers=ana.headers)
    assert wrong.status_code == 422
    assert "counts" in wrong.text
