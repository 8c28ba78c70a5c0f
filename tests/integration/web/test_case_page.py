"""The case page's details over HTTP: title, priority and tags, the template's form fields
rendered from its JSON Schema and validated by it, follow-ups and their parent, and the
history; each change runs the API's update activity with the version the page showed."""

from __future__ import annotations

import httpx
import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.web import hidden, signed_in

# The update activity under these forms is tested through the API on every database.
pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
async def agent_desk(desk: Desk, tenants: Tenants) -> Desk:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    await signed_in(desk.http, desk.tenant, agent.id)
    return desk


async def _form(http: httpx.AsyncClient, number: int) -> tuple[str, str]:
    page = await http.get(f"/app/cases/{number}")
    assert page.status_code == 200, page.text
    return hidden(page.text, "csrf_token"), hidden(page.text, "version")


async def test_title_priority_and_tags_change_in_one_form(agent_desk: Desk) -> None:
    desk = agent_desk
    case = await desk.new_case(title="Old title")
    csrf, version = await _form(desk.http, case["number"])
    saved = await desk.http.post(
        f"/app/cases/{case['number']}/details",
        data={
            "csrf_token": csrf,
            "version": version,
            "title": "New title",
            "priority": "urgent",
            "tags": "vip, printer ,vip",
        },
    )
    assert saved.status_code == 303, saved.text
    read = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert (read["title"], read["priority"]) == ("New title", "urgent")
    assert read["tags"] == ["printer", "vip"]
    stale = await desk.http.post(
        f"/app/cases/{case['number']}/details",
        data={"csrf_token": csrf, "version": version, "title": "Lost", "priority": "low"},
    )
    assert stale.status_code == 409
    csrf, version = await _form(desk.http, case["number"])
    bad = await desk.http.post(
        f"/app/cases/{case['number']}/details",
        data={"csrf_token": csrf, "version": version, "title": "x", "priority": "whenever"},
    )
    assert bad.status_code == 422
    odd = await desk.http.post(
        f"/app/cases/{case['number']}/details",
        data={"csrf_token": csrf, "version": "\u00b2", "title": "Squared", "priority": "low"},
    )
    assert odd.status_code == 303, "a version that is no ASCII number checks nothing"
    page = await desk.http.get(f"/app/cases/{case['number']}")
    assert "Changed the case" in page.text
    assert "Title, Priority, Tags" in page.text


async def test_the_form_fields_come_from_the_schema_and_are_validated_by_it(
    agent_desk: Desk,
) -> None:
    desk = agent_desk
    case = await desk.new_case(form={"product": "printer", "quantity": 2})
    page = await desk.http.get(f"/app/cases/{case['number']}")
    assert 'name="form.product" value="printer"' in page.text
    assert 'name="form.quantity" type="number" value="2"' in page.text
    csrf, version = hidden(page.text, "csrf_token"), hidden(page.text, "version")
    refused = await desk.http.post(
        f"/app/cases/{case['number']}/form",
        data={
            "csrf_token": csrf,
            "version": version,
            "form.product": "printer",
            "form.quantity": "0",
        },
    )
    assert refused.status_code == 422
    assert "quantity" in refused.text
    for quantity in ("9" * 30, "lots"):
        huge = await desk.http.post(
            f"/app/cases/{case['number']}/form",
            data={"csrf_token": csrf, "version": version, "form.quantity": quantity},
        )
        assert huge.status_code == 422, quantity
    saved = await desk.http.post(
        f"/app/cases/{case['number']}/form",
        data={"csrf_token": csrf, "version": version, "form.quantity": "5", "form.order_id": "A-1"},
    )
    assert saved.status_code == 303, saved.text
    read = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert read["form"] == {"quantity": 5, "order_id": "A-1"}, "an emptied field is removed"


async def test_follow_ups_link_their_parent_and_the_parent_lists_them(agent_desk: Desk) -> None:
    desk = agent_desk
    parent = await desk.new_case(title="The first report")
    child = await desk.new_case(title="It happened again", parent_id=parent["id"])
    on_parent = await desk.http.get(f"/app/cases/{parent['number']}")
    assert f'href="/app/cases/{child["number"]}"' in on_parent.text
    on_child = await desk.http.get(f"/app/cases/{child['number']}")
    assert f'href="/app/cases/{parent["number"]}"' in on_child.text
    assert "Opened the case" in on_child.text


async def test_a_list_saved_as_a_view_shows_in_the_sidebar_with_its_count(
    agent_desk: Desk, tenants: Tenants
) -> None:
    desk = agent_desk
    await desk.new_case(title="Urgent one", priority="urgent")
    await desk.new_case(title="Calm one")
    listed = await desk.http.get("/app/cases?view=open&priority=urgent")
    assert 'name="shared"' not in listed.text, "only admins share"
    saved = await desk.http.post(
        "/app/views",
        data={
            "csrf_token": hidden(listed.text, "csrf_token"),
            "name": "Fires",
            "view": "open",
            "priority": "urgent",
            "sort": "-updated",
        },
    )
    assert saved.status_code == 303, saved.text
    page = await desk.http.get(saved.headers["location"])
    assert "Urgent one" in page.text
    assert "Calm one" not in page.text
    view_id = saved.headers["location"].split("saved=")[1]
    assert f'data-view="saved-{view_id}">1<' in page.text
    assert (await desk.http.get("/app/counts")).json()[f"saved-{view_id}"] == "1"
    shared = await desk.http.post(
        "/app/views",
        data={"csrf_token": hidden(listed.text, "csrf_token"), "name": "All", "shared": "1"},
    )
    assert shared.status_code == 403

    bad = await desk.http.post(
        "/app/views",
        data={"csrf_token": hidden(listed.text, "csrf_token"), "name": "", "view": "open"},
    )
    assert bad.status_code == 422
    assert "name" in bad.text
    colleague = await tenants.member(desk.tenant.id, Role.AGENT)
    desk.http.cookies.clear()
    await signed_in(desk.http, desk.tenant, colleague.id)
    theirs = await desk.http.get(f"/app/cases?saved={view_id}")
    assert theirs.status_code == 404, "a personal view is its owner's alone"
