"""The macros screen, the macro picker in the reply box and the availability toggle, over
HTTP: a macro's text is shown for review, sent as edited, and its actions applied on send."""

from __future__ import annotations

import httpx
import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.web import hidden, signed_in

# The pages run the activities the API runs, tested there on every database.
pytestmark = pytest.mark.backends("sqlite")


async def _agent(client: httpx.AsyncClient, desk: Desk, tenants: Tenants) -> str:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    await signed_in(client, desk.tenant, agent.id)
    return hidden((await client.get("/app/macros")).text, "csrf_token")


async def test_an_agent_keeps_a_macro_and_a_bad_placeholder_is_named(
    client: httpx.AsyncClient, desk: Desk, tenants: Tenants
) -> None:
    csrf = await _agent(client, desk, tenants)
    bad = await client.post(
        "/app/macros", data={"csrf_token": csrf, "name": "Bad", "body": "Hi {{customer.nam}}"}
    )
    assert bad.status_code == 422
    assert "{{customer.nam}}" in bad.text
    shared = await client.post(
        "/app/macros", data={"csrf_token": csrf, "name": "S", "body": "x", "shared": "on"}
    )
    assert shared.status_code == 403
    made = await client.post(
        "/app/macros",
        data={
            "csrf_token": csrf,
            "name": "Refund",
            "body": "Dear {{customer.name}}",
            "public": "on",
            "priority": "high",
            "tags": "refund, vip",
            "queue": "billing",
        },
    )
    assert made.status_code == 303
    page = await client.get("/app/macros")
    assert "Refund" in page.text
    assert 'Transfer to queue <span translate="no">billing</span>' in page.text
    listed = (await client.get("/api/v1/macros", headers=desk.headers)).json()["items"]
    assert listed == []  # personal: the admin does not see it
    no_csrf = await client.post("/app/macros", data={"name": "x", "body": "y"})
    assert no_csrf.status_code == 403
    edit_link = page.text.split('href="/app/macros/')[1].split('"')[0]
    editing = await client.get(f"/app/macros/{edit_link}")
    assert 'value="refund, vip"' in editing.text
    assert "Save macro" in editing.text
    saved = await client.post(
        f"/app/macros/{edit_link}",
        data={"csrf_token": csrf, "name": "Refund v2", "body": "Dear {{customer.name}}"},
    )
    assert saved.status_code == 303
    page = await client.get("/app/macros")
    assert "Refund v2" in page.text
    assert "billing</span>" not in page.text  # its actions were cleared with the form
    bad_edit = await client.post(
        f"/app/macros/{edit_link}", data={"csrf_token": csrf, "name": "", "body": "x"}
    )
    assert bad_edit.status_code == 422
    assert "name" in bad_edit.text
    deleted = await client.post(f"/app/macros/{edit_link}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert (await client.get(f"/app/macros/{edit_link}")).status_code == 404


async def test_the_picker_shows_the_text_for_review_and_send_applies_it(
    client: httpx.AsyncClient, desk: Desk, tenants: Tenants
) -> None:
    made = await client.post(
        "/api/v1/macros",
        json={
            "name": "Greeting",
            "body": "Hello {{customer.name}}, about #{{case.number}}",
            "public": True,
            "shared": True,
            "actions": [{"type": "add_tag", "tag": "greeted"}],
        },
        headers=desk.headers,
    )
    macro = made.json()
    case = await desk.new_case(customer={"email": "ada@example.com", "name": "Ada"})
    csrf = await _agent(client, desk, tenants)
    page = await client.get(f"/app/cases/{case['number']}")
    assert "Greeting" in page.text
    assert "Use macro" in page.text
    review = await client.get(f"/app/cases/{case['number']}", params={"macro": macro["id"]})
    assert f"Hello Ada, about #{case['number']}</textarea>" in review.text
    assert 'Add tag <span translate="no">greeted</span>' in review.text
    sent = await client.post(
        f"/app/cases/{case['number']}/macros/{macro['id']}",
        data={"csrf_token": csrf, "version": str(case["version"]), "body": "Hello Ada, edited"},
    )
    assert sent.status_code == 303
    after = (await client.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert after["tags"] == ["greeted"]
    comments = (
        await client.get(f"/api/v1/cases/{case['id']}/comments", headers=desk.headers)
    ).json()["items"]
    assert [(c["body"], c["public"]) for c in comments] == [("Hello Ada, edited", True)]
    stale = await client.post(
        f"/app/cases/{case['number']}/macros/{macro['id']}",
        data={"csrf_token": csrf, "version": str(case["version"]), "body": "again"},
    )
    assert stale.status_code == 409


async def test_availability_toggle_and_queue_mode_on_the_admin_screen(
    client: httpx.AsyncClient, desk: Desk
) -> None:
    await signed_in(client, desk.tenant, desk.tenant.admin_id)
    page = await client.get("/app/cases")
    assert 'aria-pressed="true"' in page.text
    csrf = hidden(page.text, "csrf_token")
    toggled = await client.post(
        "/app/me/availability",
        data={"csrf_token": csrf, "availability": "away", "back": "/app/cases"},
    )
    assert toggled.status_code == 303
    assert toggled.headers["location"] == "/app/cases"
    mine = await client.get("/api/v1/me/availability", headers=desk.headers)
    assert mine.json() == {"availability": "away"}
    assert 'aria-pressed="false"' in (await client.get("/app/cases")).text
    bad = await client.post(
        "/app/me/availability", data={"csrf_token": csrf, "availability": "gone"}
    )
    assert bad.status_code == 422
    queues = await client.get("/app/admin/queues")
    assert "Round robin" in queues.text
    changed = await client.post(
        "/app/admin/queues/support/assignment",
        data={"csrf_token": csrf, "assignment": "round_robin"},
    )
    assert changed.status_code == 303
    listed = (await client.get("/api/v1/queues", headers=desk.headers)).json()
    assert {q["code"]: q["assignment"] for q in listed}["support"] == "round_robin"
    wrong = await client.post(
        "/app/admin/queues/support/assignment", data={"csrf_token": csrf, "assignment": "dice"}
    )
    assert wrong.status_code == 422
    assert "assignment" in wrong.text
    made = await client.post(
        "/app/admin/queues",
        data={"csrf_token": csrf, "code": "vip", "name": "VIP", "assignment": "least_loaded"},
    )
    assert made.status_code == 303


async def test_viewers_cannot_send_a_macro(
    client: httpx.AsyncClient, desk: Desk, tenants: Tenants
) -> None:
    made = await client.post(
        "/api/v1/macros", json={"name": "S", "body": "x", "shared": True}, headers=desk.headers
    )
    case = await desk.new_case()
    viewer = await tenants.member(desk.tenant.id, Role.VIEWER)
    await signed_in(client, desk.tenant, viewer.id)
    csrf = hidden((await client.get("/app/macros")).text, "csrf_token")
    sent = await client.post(
        f"/app/cases/{case['number']}/macros/{made.json()['id']}",
        data={"csrf_token": csrf, "body": "x"},
    )
    assert sent.status_code == 403
