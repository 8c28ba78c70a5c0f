"""The admins' screens over HTTP: queues, a state machine drawn with its problems and
published once they are fixed, templates with their forms; not for agents or viewers.
What the screens saved is what the API then reads."""

from __future__ import annotations

import json

import httpx
import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import TenantHandle, Tenants
from tests.support.web import hidden, signed_in

BROKEN = {
    "states": [
        {"code": "new", "name": "New", "type": "start"},
        {"code": "done", "name": "Done", "type": "end"},
    ],
    "transitions": [{"action": "finish", "name": "Finish", "from": "new", "to": "gone"}],
}

# The pages run the activities the API runs, tested there on every database.
pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
async def admin(client: httpx.AsyncClient, tenants: Tenants) -> tuple[TenantHandle, str]:
    tenant = await tenants.create()
    await signed_in(client, tenant, tenant.admin_id)
    page = await client.get("/app/admin/queues")
    return tenant, hidden(page.text, "csrf_token")


async def test_every_admin_screen_opens(
    client: httpx.AsyncClient, admin: tuple[TenantHandle, str]
) -> None:
    for path, heading in (
        ("/app/admin/queues", "New queue"),
        ("/app/admin/machines", "New state machine"),
        ("/app/admin/templates", "New template"),
    ):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert heading in page.text
    assert (await client.get("/app/admin/machines/nothing")).status_code == 404
    assert (await client.get("/app/admin")).headers["location"] == "/app/admin/queues"


async def test_an_admin_creates_a_queue_and_a_bad_code_is_named(
    client: httpx.AsyncClient, admin: tuple[TenantHandle, str]
) -> None:
    tenant, csrf = admin
    bad = await client.post(
        "/app/admin/queues", data={"csrf_token": csrf, "code": "Not A Code", "name": "Bad"}
    )
    assert bad.status_code == 422
    assert "code:" in bad.text
    made = await client.post(
        "/app/admin/queues", data={"csrf_token": csrf, "code": "vip", "name": "VIP customers"}
    )
    assert made.status_code == 303
    again = await client.post(
        "/app/admin/queues", data={"csrf_token": csrf, "code": "vip", "name": "Twice"}
    )
    assert again.status_code == 422
    assert "already exists" in again.text
    listed = await client.get("/api/v1/queues", headers=tenant.headers)
    assert [q["code"] for q in listed.json()] == ["vip"]


async def test_a_machine_shows_its_problems_is_refused_then_fixed_and_published(
    client: httpx.AsyncClient, admin: tuple[TenantHandle, str]
) -> None:
    tenant, csrf = admin
    saved = await client.post(
        "/app/admin/machines",
        data={
            "csrf_token": csrf,
            "code": "flow",
            "name": "Flow",
            "definition": json.dumps(BROKEN),
        },
    )
    assert saved.status_code == 303
    page = await client.get(saved.headers["location"])
    assert "The draft cannot be published yet" in page.text
    assert "gone" in page.text
    assert "<svg" in page.text
    assert "Finish" not in page.text.split("<svg", 1)[1].split("</svg>", 1)[0]  # not drawn
    refused = await client.post("/app/admin/machines/flow/publish", data={"csrf_token": csrf})
    assert refused.status_code == 422
    not_json = await client.post(
        "/app/admin/machines",
        data={"csrf_token": csrf, "code": "flow", "name": "Flow", "definition": "{states"},
    )
    assert not_json.status_code == 422
    assert "not JSON" in not_json.text
    assert "{states" in not_json.text  # what was typed is kept

    fixed = BROKEN | {
        "transitions": [{"action": "finish", "name": "Finish", "from": "new", "to": "done"}]
    }
    resaved = await client.post(
        "/app/admin/machines",
        data={"csrf_token": csrf, "code": "flow", "name": "Flow", "definition": json.dumps(fixed)},
    )
    assert resaved.status_code == 303
    page = await client.get("/app/admin/machines/flow")
    assert "The draft has no problems." in page.text
    assert "Finish" in page.text.split("<svg", 1)[1].split("</svg>", 1)[0]
    published = await client.post("/app/admin/machines/flow/publish", data={"csrf_token": csrf})
    assert published.status_code == 303
    shown = await client.get("/api/v1/state-machines/flow", headers=tenant.headers)
    assert shown.json()["latest_version"] == 1
    assert "Published as version 1." in (await client.get(published.headers["location"])).text


async def test_a_template_with_a_form_and_its_mistakes(
    client: httpx.AsyncClient, admin: tuple[TenantHandle, str]
) -> None:
    tenant, csrf = admin
    await client.post(
        "/app/admin/queues", data={"csrf_token": csrf, "code": "support", "name": "Support"}
    )
    ready = BROKEN | {
        "transitions": [{"action": "finish", "name": "Finish", "from": "new", "to": "done"}]
    }
    await client.post(
        "/app/admin/machines",
        data={"csrf_token": csrf, "code": "flow", "name": "Flow", "definition": json.dumps(ready)},
    )
    await client.post("/app/admin/machines/flow/publish", data={"csrf_token": csrf})
    form = {
        "csrf_token": csrf,
        "code": "refund",
        "name": "Refund",
        "state_machine": "flow",
        "default_queue": "support",
        "default_priority": "high",
    }
    not_json = await client.post("/app/admin/templates", data=form | {"form_schema": "{"})
    assert not_json.status_code == 422
    assert "not JSON" in not_json.text
    not_a_schema = await client.post(
        "/app/admin/templates", data=form | {"form_schema": '{"type": "nonsense"}'}
    )
    assert not_a_schema.status_code == 422
    nan = await client.post("/app/admin/templates", data=form | {"form_schema": '{"maximum": NaN}'})
    assert nan.status_code == 422, "NaN is not JSON"
    huge = await client.post(
        "/app/admin/templates",
        data=form | {"code": "huge", "form_schema": '{"maximum": 99999999999999999999999}'},
    )
    assert huge.status_code == 303, "read as the API reads it (a number)"
    schema = {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}
    made = await client.post(
        "/app/admin/templates", data=form | {"form_schema": json.dumps(schema), "public": "on"}
    )
    assert made.status_code == 303
    shown = await client.get("/api/v1/templates/refund", headers=tenant.headers)
    assert shown.json()["form_schema"] == schema
    assert shown.json()["public"] is True
    assert shown.json()["default_priority"] == "high"


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
async def test_the_admin_screens_are_not_for_agents_or_viewers(
    client: httpx.AsyncClient, tenants: Tenants, role: Role
) -> None:
    tenant = await tenants.create()
    member = await tenants.member(tenant.id, role)
    await signed_in(client, tenant, member.id)
    cases = await client.get("/app/cases?view=open")
    assert 'href="/app/admin"' not in cases.text
    for path in ("/app/admin/queues", "/app/admin/machines", "/app/admin/templates"):
        assert (await client.get(path)).status_code == 403
    csrf = hidden(cases.text, "csrf_token")
    posted = await client.post(
        "/app/admin/queues", data={"csrf_token": csrf, "code": "sneaky", "name": "Sneaky"}
    )
    assert posted.status_code == 403
    listed = await client.get("/api/v1/queues", headers=tenant.headers)
    assert listed.json() == []


async def test_an_admin_chooses_who_works_a_queue(
    client: httpx.AsyncClient, admin: tuple[TenantHandle, str], tenants: Tenants
) -> None:
    tenant, csrf = admin
    await client.post("/app/admin/queues", data={"csrf_token": csrf, "code": "vip", "name": "VIP"})
    agent = await tenants.member(tenant.id, Role.AGENT)
    page = await client.get("/app/admin/queues")
    assert f'value="{agent.id}"' in page.text
    saved = await client.post(
        "/app/admin/queues/vip/members", data={"csrf_token": csrf, "user_id": str(agent.id)}
    )
    assert saved.status_code == 303
    read = await client.get("/api/v1/queues/vip/members", headers=tenant.headers)
    assert read.json() == {"user_ids": [str(agent.id)]}
    bad = await client.post(
        "/app/admin/queues/vip/members", data={"csrf_token": csrf, "user_id": "someone"}
    )
    assert bad.status_code == 422
    assert (await client.get("/api/v1/queues/vip/members", headers=tenant.headers)).json() == {
        "user_ids": [str(agent.id)]
    }
    gone = await client.post("/app/admin/queues/nowhere/members", data={"csrf_token": csrf})
    assert gone.status_code == 404
