"""Every case activity over HTTP: its effect, its record, its events and its error codes."""

from __future__ import annotations

import uuid

import httpx
import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.cases import Desk, unique


def _codes(events: list[dict[str, object]], case_id: str) -> list[object]:
    return [e["type"] for e in events if e["subject"] == case_id]


async def _history(desk: Desk, case_id: str) -> list[dict[str, object]]:
    response = await desk.http.get(f"/api/v1/cases/{case_id}/history", headers=desk.headers)
    assert response.status_code == 200
    items: list[dict[str, object]] = response.json()["items"]
    return items


# --- CreateCase ---------------------------------------------------------------------------


async def test_create_gives_number_start_state_task_and_events(desk: Desk) -> None:
    first = await desk.new_case(customer={"email": "Ann@Example.com", "name": "Ann"})
    second = await desk.new_case()
    assert (first["number"], second["number"]) == (1, 2)
    assert first["state"] == "new"
    assert first["current_state"] == {"code": "new", "name": "New", "type": "start"}
    assert {a["action"] for a in first["allowed_actions"]} == {"start", "solve"}
    assert first["queue"] == "support"
    assert first["priority"] == "normal"
    assert first["customer"]["email"] == "ann@example.com"
    assert [t["status"] for t in first["tasks"]] == ["pending"]
    assert first["version"] == 1
    assert _codes(await desk.events(), first["id"]) == ["case.created", "task.created"]
    history = await _history(desk, first["id"])
    assert [h["code"] for h in history] == ["case.create"]
    assert history[0]["memo"]["form"] == {"product": "P-1"}


async def test_create_on_a_queue_with_an_assignee_and_tags(desk: Desk, tenants: Tenants) -> None:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    case = await desk.new_case(
        queue="billing", assignee_id=str(agent.id), priority="urgent", tags=["vip", "vip", "b"]
    )
    assert case["queue"] == "billing"
    assert case["assignee_id"] == str(agent.id)
    assert case["tasks"][0]["assignee_id"] == str(agent.id)
    assert case["priority"] == "urgent"
    assert case["tags"] == ["b", "vip"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"template": "nope"}, "template"),
        ({"queue": "nope"}, "queue"),
        ({"assignee_id": str(uuid.uuid4())}, "assignee_id"),
        ({"parent_id": str(uuid.uuid4())}, "parent_id"),
        ({"title": ""}, "title"),
        ({"priority": "meh"}, "priority"),
        ({"customer": {"email": "nope"}}, "customer.email"),
        ({"form": {"quantity": "two", "address": {"zip": "abc"}}}, "form.quantity"),
    ],
)
async def test_create_refuses_bad_references_and_fields(
    desk: Desk, fields: dict[str, object], field: str
) -> None:
    response = await desk.create_case(**fields)
    assert response.status_code == 422, response.text
    body = response.json()
    named = {e["field"] for e in body.get("errors", [])} | {body.get("field")}
    assert field in named
    listed = await desk.http.get("/api/v1/cases", headers=desk.headers)
    assert listed.json()["items"] == []


async def test_a_viewer_cannot_create(desk: Desk, tenants: Tenants) -> None:
    viewer = await tenants.member(desk.tenant.id, Role.VIEWER)
    response = await desk.http.post(
        "/api/v1/cases",
        json={"template": "question", "title": "x", "form": {"product": "p"}},
        headers=viewer.headers,
    )
    assert response.status_code == 403
    readable = await desk.http.get("/api/v1/cases", headers=viewer.headers)
    assert readable.status_code == 200


async def test_a_child_case_tells_its_parent(desk: Desk) -> None:
    parent = await desk.new_case()
    child = await desk.new_case(parent_id=parent["id"], title="Follow-up")
    assert child["parent_id"] == parent["id"]
    events = await desk.events()
    child_created = [e for e in events if e["type"] == "case.child_created"]
    assert len(child_created) == 1
    assert child_created[0]["subject"] == parent["id"]
    assert child_created[0]["data"]["child_id"] == child["id"]


async def test_external_ref_is_unique_per_channel(desk: Desk) -> None:
    ref = unique("mail")
    first = await desk.create_case(channel="email", external_ref=ref)
    again = await desk.create_case(channel="email", external_ref=ref, title="Other title")
    elsewhere = await desk.create_case(channel="slack", external_ref=ref)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["title"] == "Printer on fire"
    assert elsewhere.status_code == 201
    assert elsewhere.json()["id"] != first.json()["id"]


async def test_idempotency_key_replays_the_same_response(desk: Desk) -> None:
    key = {"Idempotency-Key": unique("idem")}
    body = {"template": "question", "title": "Once", "form": {"product": "p"}}
    first = await desk.http.post("/api/v1/cases", json=body, headers=desk.headers | key)
    second = await desk.http.post("/api/v1/cases", json=body, headers=desk.headers | key)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    other = await desk.http.post(
        "/api/v1/cases", json=body | {"title": "Twice"}, headers=desk.headers | key
    )
    assert other.status_code == 422
    assert other.json()["field"] == "Idempotency-Key"
    listed = await desk.http.get("/api/v1/cases", headers=desk.headers)
    assert len(listed.json()["items"]) == 1


# --- ApplyAction --------------------------------------------------------------------------


async def test_an_action_not_allowed_is_409_listing_the_allowed(desk: Desk) -> None:
    case = await desk.new_case()
    response = await desk.act(case["id"], "close")
    assert response.status_code == 409
    assert response.json()["allowed_actions"] == ["start", "solve"]
    unknown = await desk.act(case["id"], "launch-rockets")
    assert unknown.status_code == 409


async def test_if_match_with_a_stale_version_is_412(desk: Desk) -> None:
    case = await desk.new_case()
    moved = await desk.act(case["id"], "start", headers=desk.headers | {"If-Match": '"1"'})
    assert moved.status_code == 200
    assert moved.headers["etag"] == '"2"'
    stale = await desk.act(case["id"], "wait", headers=desk.headers | {"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    garbage = await desk.act(case["id"], "wait", headers=desk.headers | {"If-Match": "v-one"})
    assert garbage.status_code == 422
    current = await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)
    assert current.json()["state"] == "open"


async def test_reaching_an_end_state_closes_case_and_tasks_and_reopen_restores(
    desk: Desk,
) -> None:
    case = await desk.new_case()
    await desk.act(case["id"], "start")
    closed = (await desk.act(case["id"], "close", json={"comment": "fixed", "public": True})).json()
    assert closed["closed"] is True
    assert closed["closed_at"] is not None
    assert [t["status"] for t in closed["tasks"]] == ["done"]
    assert closed["comments"][0]["body"] == "fixed"
    reopened = (await desk.act(case["id"], "reopen")).json()
    assert reopened["closed"] is False
    assert reopened["closed_at"] is None
    assert reopened["state"] == "open"
    assert [t["status"] for t in reopened["tasks"]] == ["processing"]
    types = _codes(await desk.events(), case["id"])
    assert types.count("case.state_changed") == 3
    assert "case.closed" in types
    assert "case.reopened" in types
    history = await _history(desk, case["id"])
    assert [(h["memo"].get("from"), h["memo"].get("to")) for h in history[1:]] == [
        ("new", "open"),
        ("open", "solved"),
        ("solved", "open"),
    ]


async def test_an_agent_acting_takes_the_task(desk: Desk) -> None:
    case = await desk.new_case()
    started = (await desk.act(case["id"], "start")).json()
    assert started["tasks"][0]["status"] == "processing"
    assert started["tasks"][0]["assignee_id"] == str(desk.tenant.admin_id)
    assert "task.accepted" in _codes(await desk.events(), case["id"])


# --- Transfer, accept, comment, update, rate ------------------------------------------------


async def test_transfer_moves_the_open_task_and_records_from_and_to(
    desk: Desk, tenants: Tenants
) -> None:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    case = await desk.new_case()
    url = f"/api/v1/cases/{case['id']}/transfer"
    moved = await desk.http.post(
        url, json={"queue": "billing", "assignee_id": str(agent.id)}, headers=desk.headers
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["queue"] == "billing"
    assert body["assignee_id"] == str(agent.id)
    assert body["tasks"][0]["assignee_id"] == str(agent.id)
    assert body["tasks"][0]["queue_id"] == body["queue_id"]
    record = (await _history(desk, case["id"]))[-1]
    assert record["code"] == "case.transfer"
    assert record["memo"]["from"]["queue_id"] == case["queue_id"]
    assert record["memo"]["to"]["assignee_id"] == str(agent.id)
    same = await desk.http.post(url, json={"queue": "billing"}, headers=desk.headers)
    assert same.status_code == 409
    nowhere = await desk.http.post(url, json={}, headers=desk.headers)
    assert nowhere.status_code == 422
    bad_queue = await desk.http.post(url, json={"queue": "nope"}, headers=desk.headers)
    assert bad_queue.status_code == 422


async def test_a_closed_case_cannot_be_transferred(desk: Desk) -> None:
    case = await desk.new_case()
    await desk.act(case["id"], "solve")
    response = await desk.http.post(
        f"/api/v1/cases/{case['id']}/transfer", json={"queue": "billing"}, headers=desk.headers
    )
    assert response.status_code == 409


async def test_accept_takes_a_pending_task_once(desk: Desk, tenants: Tenants) -> None:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    case = await desk.new_case()
    url = f"/api/v1/cases/{case['id']}/accept"
    taken = await desk.http.post(url, headers=agent.headers)
    assert taken.status_code == 200
    assert taken.json()["tasks"][0]["status"] == "processing"
    assert taken.json()["assignee_id"] == str(agent.id)
    again = await desk.http.post(url, headers=desk.headers)
    assert again.status_code == 409


async def test_comments_public_internal_and_from_a_customer(desk: Desk) -> None:
    case = await desk.new_case()
    url = f"/api/v1/cases/{case['id']}/comments"
    internal = await desk.http.post(
        url, json={"body": "note to self", "public": False}, headers=desk.headers
    )
    assert internal.status_code == 201
    assert internal.json()["tasks"][0]["status"] == "pending"
    reply = await desk.http.post(url, json={"body": "we are on it"}, headers=desk.headers)
    assert reply.json()["tasks"][0]["status"] == "processing"
    customer = await desk.http.post(
        url,
        json={
            "body": "thanks",
            "author": {"type": "customer", "email": "c@example.com"},
            "channel": "email",
            "external_id": "<m1@example.com>",
        },
        headers=desk.headers,
    )
    comments = customer.json()["comments"]
    assert [(c["public"], c["author_type"]) for c in comments] == [
        (False, "user"),
        (True, "user"),
        (True, "customer"),
    ]
    assert comments[2]["external_id"] == "<m1@example.com>"
    secret = await desk.http.post(
        url,
        json={"body": "x", "public": False, "author": {"type": "customer", "email": "c@e.io"}},
        headers=desk.headers,
    )
    assert secret.status_code == 422
    nameless = await desk.http.post(
        url, json={"body": "x", "author": {"type": "customer"}}, headers=desk.headers
    )
    assert nameless.status_code == 422
    assert _codes(await desk.events(), case["id"]).count("comment.added") == 3


async def test_update_records_before_and_after(desk: Desk) -> None:
    case = await desk.new_case(form={"product": "P-1", "quantity": 2})
    url = f"/api/v1/cases/{case['id']}"
    changed = await desk.http.patch(
        url,
        json={
            "title": "Printer fixed?",
            "priority": "high",
            "tags": ["hw"],
            "form": {"quantity": None, "address": {"zip": "12345"}},
        },
        headers=desk.headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["form"] == {"product": "P-1", "address": {"zip": "12345"}}
    assert body["version"] == 2
    record = (await _history(desk, case["id"]))[-1]
    assert record["code"] == "case.update"
    assert record["memo"]["changes"]["priority"] == {"from": "normal", "to": "high"}
    assert record["memo"]["changes"]["title"]["from"] == "Printer on fire"
    event = [e for e in await desk.events() if e["type"] == "case.updated"][-1]
    assert set(event["data"]["changes"]) == {"title", "priority", "tags", "form"}
    assert event["data"]["case"]["version"] == 2
    invalid = await desk.http.patch(url, json={"form": {"quantity": 0}}, headers=desk.headers)
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "form.quantity"
    unchanged = await desk.http.get(url, headers=desk.headers)
    assert unchanged.json()["form"] == body["form"]


async def test_rating_only_once_and_only_when_closed(desk: Desk) -> None:
    case = await desk.new_case()
    url = f"/api/v1/cases/{case['id']}/rating"
    early = await desk.http.post(url, json={"score": 5}, headers=desk.headers)
    assert early.status_code == 409
    await desk.act(case["id"], "solve")
    out_of_range = await desk.http.post(url, json={"score": 6}, headers=desk.headers)
    assert out_of_range.status_code == 422
    rated = await desk.http.post(url, json={"score": 4, "comment": "ok"}, headers=desk.headers)
    assert rated.status_code == 200
    assert rated.json()["rating"]["score"] == 4
    twice = await desk.http.post(url, json={"score": 1}, headers=desk.headers)
    assert twice.status_code == 409
    assert "case.rated" in _codes(await desk.events(), case["id"])


# --- Tenancy -----------------------------------------------------------------------------


async def test_another_tenants_case_is_404_on_every_endpoint(
    desk: Desk, tenants: Tenants, client: httpx.AsyncClient
) -> None:
    case = await desk.new_case()
    other = await tenants.create()
    base = f"/api/v1/cases/{case['id']}"
    calls = [
        ("GET", base, None),
        ("GET", f"{base}/history", None),
        ("PATCH", base, {"title": "mine"}),
        ("POST", f"{base}/actions/start", None),
        ("POST", f"{base}/transfer", {"queue": "support"}),
        ("POST", f"{base}/accept", None),
        ("POST", f"{base}/comments", {"body": "hi"}),
        ("POST", f"{base}/rating", {"score": 5}),
    ]
    for method, url, body in calls:
        response = await client.request(method, url, json=body, headers=other.headers)
        assert response.status_code == 404, (method, url, response.text)
    untouched = await client.get(base, headers=desk.headers)
    assert untouched.json()["version"] == 1
    assert untouched.json()["comments"] == []
    parent = await client.post(
        "/api/v1/cases",
        json={"template": "question", "title": "x", "parent_id": case["id"]},
        headers=other.headers,
    )
    assert parent.status_code == 422
