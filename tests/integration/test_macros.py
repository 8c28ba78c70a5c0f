"""Macros over the API: personal and shared, placeholders, applying with actions."""

from __future__ import annotations

from typing import Any

import httpx

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.cases import Desk

GREETING = "Hello {{customer.name}} ({{ customer.email }}), case #{{case.number}}: {{case.title}}. {{agent.name}}"


async def _macro(http: httpx.AsyncClient, headers: dict[str, str], **spec: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/macros", json={"name": "m"} | spec, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_apply_renders_the_reply_and_runs_the_actions(
    desk: Desk, tenants: Tenants, client: httpx.AsyncClient
) -> None:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    macro = await _macro(
        client,
        agent.headers,
        body=GREETING,
        public=True,
        actions=[
            {"type": "set_priority", "priority": "high"},
            {"type": "add_tag", "tag": "refund"},
            {"type": "apply_action", "action": "start"},
            {"type": "transfer", "queue": "billing"},
        ],
    )
    case = await desk.new_case(customer={"email": "ada@example.com", "name": "Ada"})
    applied = await client.post(
        f"/api/v1/cases/{case['id']}/macros/{macro['id']}",
        headers=agent.headers | {"If-Match": f'"{case["version"]}"'},
    )
    assert applied.status_code == 200, applied.text
    after = applied.json()
    assert (after["priority"], after["tags"], after["state"], after["queue"]) == (
        "high",
        ["refund"],
        "open",
        "billing",
    )
    assert applied.headers["ETag"] == f'"{after["version"]}"'
    comments = (
        await client.get(f"/api/v1/cases/{case['id']}/comments", headers=desk.headers)
    ).json()
    (reply,) = comments["items"]
    assert reply["body"] == (
        f"Hello Ada (ada@example.com), case #{case['number']}: Printer on fire. agent"
    )
    assert reply["public"] is True
    history = (await client.get(f"/api/v1/cases/{case['id']}/history", headers=desk.headers)).json()
    codes = [h["code"] for h in history["items"]]
    assert codes[1:] == [
        "comment.add",
        "case.update",
        "case.update",
        "case.action",
        "case.transfer",
    ]


async def test_apply_checks_if_match_and_keeps_nothing_when_an_action_is_refused(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    macro = await _macro(
        client,
        desk.headers,
        body="Closing",
        actions=[{"type": "add_tag", "tag": "x"}, {"type": "apply_action", "action": "wait"}],
    )
    case = await desk.new_case()
    url = f"/api/v1/cases/{case['id']}/macros/{macro['id']}"
    stale = await client.post(url, headers=desk.headers | {"If-Match": '"999"'})
    assert stale.status_code == 412
    refused = await client.post(url, headers=desk.headers)
    assert refused.status_code == 409  # "wait" is not allowed in state "new"
    unchanged = (await client.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert unchanged["tags"] == []
    assert unchanged["version"] == case["version"]
    comments = (
        await client.get(f"/api/v1/cases/{case['id']}/comments", headers=desk.headers)
    ).json()
    assert comments["items"] == []


async def test_an_edited_reply_replaces_the_rendered_one(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    macro = await _macro(client, desk.headers, body="Hi {{customer.name}}")
    case = await desk.new_case()
    applied = await client.post(
        f"/api/v1/cases/{case['id']}/macros/{macro['id']}",
        json={"body": "Hi there, reviewed"},
        headers=desk.headers,
    )
    assert applied.status_code == 200, applied.text
    comments = (
        await client.get(f"/api/v1/cases/{case['id']}/comments", headers=desk.headers)
    ).json()
    assert [(c["body"], c["public"]) for c in comments["items"]] == [("Hi there, reviewed", False)]


async def test_unknown_placeholders_are_refused_by_name(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/api/v1/macros",
        json={"name": "bad", "body": "Hi {{customer.name}} {{ case.secret }} {{__class__}}"},
        headers=desk.headers,
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "{{case.secret}}" in detail
    assert "{{__class__}}" in detail
    assert "customer.name}}," not in detail.split("known")[0]
    empty = await client.post("/api/v1/macros", json={"name": "empty"}, headers=desk.headers)
    assert empty.status_code == 422
    bad_action = await client.post(
        "/api/v1/macros",
        json={"name": "x", "body": "y", "actions": [{"type": "send_webhook", "webhook_id": "x"}]},
        headers=desk.headers,
    )
    assert bad_action.status_code == 422


async def test_personal_macros_are_their_owners_and_shared_ones_admins(
    desk: Desk, tenants: Tenants, client: httpx.AsyncClient
) -> None:
    alice = await tenants.member(desk.tenant.id, Role.AGENT)
    bob = await tenants.member(desk.tenant.id, Role.AGENT)
    mine = await _macro(client, alice.headers, name="Alice's", body="a")
    shared = await _macro(client, desk.headers, name="Everyone's", body="s", shared=True)
    assert shared["shared"] is True
    assert shared["owner_id"] is None
    assert mine["owner_id"] == str(alice.id)
    denied = await client.post(
        "/api/v1/macros", json={"name": "n", "body": "b", "shared": True}, headers=bob.headers
    )
    assert denied.status_code == 403
    seen = (await client.get("/api/v1/macros", headers=bob.headers)).json()
    assert [m["name"] for m in seen["items"]] == ["Everyone's"]
    assert "agent.name" in seen["placeholders"]
    case = await desk.new_case()
    for method, url in (
        ("GET", f"/api/v1/macros/{mine['id']}"),
        ("PUT", f"/api/v1/macros/{mine['id']}"),
        ("DELETE", f"/api/v1/macros/{mine['id']}"),
        ("POST", f"/api/v1/cases/{case['id']}/macros/{mine['id']}"),
    ):
        body = {"name": "taken", "body": "b"} if method == "PUT" else None
        answer = await client.request(method, url, json=body, headers=bob.headers)
        assert answer.status_code == 404, (method, url, answer.text)
    assert (
        await client.put(
            f"/api/v1/macros/{shared['id']}",
            json={"name": "mine", "body": "b"},
            headers=bob.headers,
        )
    ).status_code == 403
    renamed = await client.put(
        f"/api/v1/macros/{mine['id']}",
        json={"name": "Renamed", "body": "b2"},
        headers=alice.headers,
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Renamed"
    gone = await client.delete(f"/api/v1/macros/{mine['id']}", headers=alice.headers)
    assert gone.status_code == 204
    assert (
        await client.get(f"/api/v1/macros/{mine['id']}", headers=alice.headers)
    ).status_code == 404


async def test_viewers_cannot_apply_and_other_tenants_see_nothing(
    desk: Desk, tenants: Tenants, client: httpx.AsyncClient
) -> None:
    shared = await _macro(client, desk.headers, body="s", shared=True)
    case = await desk.new_case()
    viewer = await tenants.member(desk.tenant.id, Role.VIEWER)
    applied = await client.post(
        f"/api/v1/cases/{case['id']}/macros/{shared['id']}", headers=viewer.headers
    )
    assert applied.status_code == 403
    made = await client.post(
        "/api/v1/macros", json={"name": "v", "body": "b"}, headers=viewer.headers
    )
    assert made.status_code == 403
    other = await tenants.create()
    assert (
        await client.get(f"/api/v1/macros/{shared['id']}", headers=other.headers)
    ).status_code == 404
    assert (await client.get("/api/v1/macros", headers=other.headers)).json()["items"] == []
