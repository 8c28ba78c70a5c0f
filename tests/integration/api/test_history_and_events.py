"""A case's history and the tenant's event feed: order, paging, CloudEvents, trace context."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from casedesk.kit.ids import uuid7
from casedesk.store.models import OutboxEvent
from casedesk.store.unit_of_work import UnitOfWork
from tests.conftest import Tenants
from tests.support.cases import Desk, make_desk

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def _trace_of(traceparent: str) -> str:
    assert TRACEPARENT.match(traceparent), traceparent
    return traceparent.split("-")[1]


def _span_of(traceparent: str) -> str:
    return traceparent.split("-")[2]


def _new_traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


async def _history(desk: Desk, case_id: str, **params: Any) -> httpx.Response:
    return await desk.http.get(
        f"/api/v1/cases/{case_id}/history", params=params, headers=desk.headers
    )


async def _feed(desk: Desk, **params: Any) -> httpx.Response:
    await desk.relay()
    return await desk.http.get("/api/v1/events", params=params, headers=desk.headers)


async def _act(desk: Desk, case_id: str, action: str) -> dict[str, Any]:
    response = await desk.act(case_id, action)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _create_traced(desk: Desk, traceparent: str) -> httpx.Response:
    return await desk.http.post(
        "/api/v1/cases",
        json={"template": "question", "title": "Traced", "form": {"product": "P-1"}},
        headers=desk.headers | {"traceparent": traceparent},
    )


def _sequence(event: dict[str, Any]) -> int:
    return int(event["sequence"])


def _position(event: dict[str, Any]) -> int:
    return int(event["position"])


# --- history -----------------------------------------------------------------------------


async def test_history_lists_the_action_records_oldest_first(desk: Desk) -> None:
    case = await desk.new_case(priority="high", queue="billing")
    for action in ("start", "close", "reopen"):
        await _act(desk, case["id"], action)

    response = await _history(desk, case["id"])
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert response.json()["next_cursor"] is None
    assert [item["code"] for item in items] == [
        "case.create",
        "case.action",
        "case.action",
        "case.action",
    ]
    created = items[0]["memo"]
    assert (created["state"], created["queue"], created["priority"]) == ("new", "billing", "high")
    assert created["form"] == {"product": "P-1"}
    assert items[0]["task_id"] == case["tasks"][0]["id"]
    assert [(m["action"], m["from"], m["to"]) for m in (i["memo"] for i in items[1:])] == [
        ("start", "new", "open"),
        ("close", "open", "solved"),
        ("reopen", "solved", "open"),
    ]
    admin_id = str(desk.tenant.admin_id)
    assert {(i["operator"]["type"], i["operator"]["id"]) for i in items} == {("user", admin_id)}
    assert all(TRACE_ID.match(item["trace_id"]) for item in items)
    assert len({item["trace_id"] for item in items}) == 4, "one trace per request"
    ids = [uuid.UUID(item["id"]) for item in items]
    assert ids == sorted(ids)
    times = [datetime.fromisoformat(item["created_at"]) for item in items]
    assert times == sorted(times)


async def test_history_pages_with_a_cursor(desk: Desk) -> None:
    case = await desk.new_case()
    for action in ("start", "wait", "resume", "close"):
        await _act(desk, case["id"], action)
    everything = (await _history(desk, case["id"])).json()["items"]
    assert len(everything) == 5

    first = (await _history(desk, case["id"], limit=2)).json()
    second = (await _history(desk, case["id"], limit=2, cursor=first["next_cursor"])).json()
    third = (await _history(desk, case["id"], limit=2, cursor=second["next_cursor"])).json()
    assert [len(page["items"]) for page in (first, second, third)] == [2, 2, 1]
    assert third["next_cursor"] is None
    walked = first["items"] + second["items"] + third["items"]
    assert walked == everything
    assert [item["memo"].get("action") for item in walked] == [
        None,
        "start",
        "wait",
        "resume",
        "close",
    ]


async def test_history_of_one_case_holds_only_its_records(desk: Desk) -> None:
    mine = await desk.new_case()
    other = await desk.new_case()
    await _act(desk, other["id"], "solve")
    items = (await _history(desk, mine["id"])).json()["items"]
    assert [item["code"] for item in items] == ["case.create"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"cursor": "garbage"}, "cursor")],
)
async def test_bad_history_parameters_are_422(
    desk: Desk, params: dict[str, Any], field: str
) -> None:
    case = await desk.new_case()
    response = await _history(desk, case["id"], **params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in {e["field"] for e in body.get("errors", [])} | {body.get("field")}


async def test_another_tenants_case_history_is_404(
    desk: Desk, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    case = await desk.new_case()
    other = await tenants.create()
    response = await client.get(f"/api/v1/cases/{case['id']}/history", headers=other.headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    unknown = await _history(desk, str(uuid.uuid4()))
    assert unknown.status_code == 404
    assert (await _history(desk, case["id"])).status_code == 200


# --- the event feed ----------------------------------------------------------------------


async def test_creating_a_case_writes_its_events_in_order(desk: Desk) -> None:
    case = await desk.new_case()
    events = await desk.events()
    assert [e["type"] for e in events] == ["case.created", "task.created"]
    assert {e["subject"] for e in events} == {case["id"]}
    sequences = [_sequence(e) for e in events]
    assert sequences == sorted(set(sequences))
    assert events[1]["data"]["task_id"] == case["tasks"][0]["id"]
    assert events[1]["data"]["queue"] == "support"


async def test_after_returns_only_later_events(desk: Desk) -> None:
    first = await desk.new_case()
    second = await desk.new_case()
    events = await desk.events()
    assert [(e["type"], e["subject"]) for e in events] == [
        ("case.created", first["id"]),
        ("task.created", first["id"]),
        ("case.created", second["id"]),
        ("task.created", second["id"]),
    ]
    later = await desk.events(after=_position(events[1]))
    assert later == events[2:]

    page = (await _feed(desk, after=_position(events[0]), limit=2)).json()
    assert page["items"] == events[1:3]
    assert page["next_after"] == _position(events[2])

    end = (await _feed(desk, after=_position(events[-1]))).json()
    assert end == {"items": [], "next_after": None}


async def test_type_filters_the_feed(desk: Desk) -> None:
    first = await desk.new_case()
    second = await desk.new_case()
    await _act(desk, second["id"], "start")
    created = await desk.events(type="case.created")
    assert [(e["type"], e["subject"]) for e in created] == [
        ("case.created", first["id"]),
        ("case.created", second["id"]),
    ]
    changed = await desk.events(type=["case.state_changed", "task.created"])
    assert [(e["type"], e["subject"]) for e in changed] == [
        ("task.created", first["id"]),
        ("task.created", second["id"]),
        ("case.state_changed", second["id"]),
    ]
    assert await desk.events(type="case.closed") == []


@pytest.mark.parametrize(
    "types", [["case.exploded"], ["case.created", "nope"], ["CASE.CREATED"], [""]]
)
async def test_an_unknown_event_type_is_422(desk: Desk, types: list[str]) -> None:
    response = await _feed(desk, type=types)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "type"


@pytest.mark.parametrize(("params"), [{"after": -1}, {"limit": 0}, {"limit": 501}])
async def test_bad_feed_bounds_are_422(desk: Desk, params: dict[str, int]) -> None:
    response = await _feed(desk, **params)
    assert response.status_code == 422, response.text
    assert {e["field"] for e in response.json()["errors"]} == set(params)


@pytest.mark.parametrize("after", [2**63, 10**20])
async def test_an_after_beyond_any_sequence_is_not_a_server_error(
    desk: Desk, backend: str, request: pytest.FixtureRequest, after: int
) -> None:
    await desk.new_case()
    response = await _feed(desk, after=after)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json() == {"items": [], "next_after": None}
    else:
        assert response.json()["errors"][0]["field"] == "after"


async def test_events_are_cloudevents_envelopes(desk: Desk) -> None:
    case = await desk.new_case()
    event = (await desk.events(type="case.created"))[0]
    assert event["specversion"] == "1.0"
    uuid.UUID(event["id"])
    assert event["source"] == f"/tenants/{desk.tenant.id}/cases"
    assert event["type"] == "case.created"
    assert event["subject"] == case["id"]
    assert event["datacontenttype"] == "application/json"
    assert TRACEPARENT.match(event["traceparent"])
    assert event["sequence"].isdigit()
    assert event["time"].endswith("Z")
    happened = datetime.fromisoformat(event["time"])
    created = datetime.fromisoformat(case["created_at"])
    assert abs(happened - created) < timedelta(seconds=30)
    data = event["data"]
    assert data["case"]["id"] == case["id"]
    assert data["case"]["number"] == case["number"] == 1
    assert data["case"]["state"] == "new"
    assert data["case"]["priority"] == "normal"
    assert data["case"]["version"] == 1
    assert data["template"] == "question"
    assert data["actor"] == {"type": "user", "id": str(desk.tenant.admin_id)}
    ids = {e["id"] for e in await desk.events()}
    assert len(ids) == 2


async def test_a_request_traceparent_follows_into_events_and_history(desk: Desk) -> None:
    trace_id, traceparent = _new_traceparent()
    response = await _create_traced(desk, traceparent)
    assert response.status_code == 201, response.text
    assert _trace_of(response.headers["traceparent"]) == trace_id
    assert _span_of(response.headers["traceparent"]) != _span_of(traceparent)
    case = response.json()

    events = await desk.events()
    assert [e["type"] for e in events] == ["case.created", "task.created"]
    assert {_trace_of(e["traceparent"]) for e in events} == {trace_id}
    history = (await _history(desk, case["id"])).json()["items"]
    assert [item["trace_id"] for item in history] == [trace_id]

    action_trace, action_parent = _new_traceparent()
    started = await desk.http.post(
        f"/api/v1/cases/{case['id']}/actions/start",
        headers=desk.headers | {"traceparent": action_parent},
    )
    assert started.status_code == 200, started.text
    assert _trace_of(started.headers["traceparent"]) == action_trace
    later = await desk.events(after=_position(events[-1]))
    assert later
    assert {_trace_of(e["traceparent"]) for e in later} == {action_trace}
    history = (await _history(desk, case["id"])).json()["items"]
    assert [item["trace_id"] for item in history] == [trace_id, action_trace]


async def test_without_a_traceparent_the_response_names_the_trace_it_started(
    desk: Desk,
) -> None:
    response = await desk.create_case()
    assert response.status_code == 201
    trace_id = _trace_of(response.headers["traceparent"])
    events = await desk.events()
    assert {_trace_of(e["traceparent"]) for e in events} == {trace_id}
    history = (await _history(desk, response.json()["id"])).json()["items"]
    assert history[0]["trace_id"] == trace_id


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        f"00-{'0' * 32}-{'1' * 16}-01",
        f"00-{'1' * 32}-{'0' * 16}-01",
        f"ff-{'1' * 32}-{'1' * 16}-01",
    ],
)
async def test_an_invalid_traceparent_starts_a_new_trace(desk: Desk, traceparent: str) -> None:
    response = await _create_traced(desk, traceparent)
    assert response.status_code == 201, response.text
    trace_id = _trace_of(response.headers["traceparent"])
    assert trace_id not in traceparent
    events = await desk.events()
    assert {_trace_of(e["traceparent"]) for e in events} == {trace_id}


async def test_each_event_has_its_own_span(desk: Desk) -> None:
    _, traceparent = _new_traceparent()
    await _create_traced(desk, traceparent)
    spans = [_span_of(e["traceparent"]) for e in await desk.events()]
    assert len(set(spans)) == 2
    assert _span_of(traceparent) not in spans


async def _events_of(desk: Desk, after: int, action: str, case_id: str) -> list[dict[str, Any]]:
    await _act(desk, case_id, action)
    return await desk.events(after=after)


async def test_state_changes_closing_and_reopening_emit_their_events(desk: Desk) -> None:
    case = await desk.new_case()
    mark = _position((await desk.events())[-1])

    started = await _events_of(desk, mark, "start", case["id"])
    assert sorted(e["type"] for e in started) == ["case.state_changed", "task.accepted"]
    change = next(e for e in started if e["type"] == "case.state_changed")
    assert {k: change["data"][k] for k in ("action", "from", "to")} == {
        "action": "start",
        "from": "new",
        "to": "open",
    }
    assert change["data"]["case"]["state"] == "open"
    assert change["data"]["case"]["version"] == 2
    assert change["subject"] == case["id"]

    mark = max(_position(e) for e in started)
    closed = await _events_of(desk, mark, "close", case["id"])
    assert sorted(e["type"] for e in closed) == ["case.closed", "case.state_changed"]
    by_type = {e["type"]: e for e in closed}
    assert by_type["case.closed"]["data"]["case"]["closed"] is True
    assert by_type["case.closed"]["data"]["case"]["state"] == "solved"
    assert (
        by_type["case.state_changed"]["data"]["from"],
        by_type["case.state_changed"]["data"]["to"],
    ) == ("open", "solved")

    mark = max(_position(e) for e in closed)
    reopened = await _events_of(desk, mark, "reopen", case["id"])
    assert sorted(e["type"] for e in reopened) == ["case.reopened", "case.state_changed"]
    by_type = {e["type"]: e for e in reopened}
    assert by_type["case.reopened"]["data"]["case"]["closed"] is False
    assert by_type["case.reopened"]["data"]["case"]["state"] == "open"
    assert by_type["case.state_changed"]["data"]["action"] == "reopen"
    assert {e["subject"] for e in started + closed + reopened} == {case["id"]}


async def test_a_transition_that_ends_the_case_from_new_also_closes_it(desk: Desk) -> None:
    case = await desk.new_case()
    mark = _position((await desk.events())[-1])
    solved = await _events_of(desk, mark, "solve", case["id"])
    assert "case.closed" in [e["type"] for e in solved]
    change = next(e for e in solved if e["type"] == "case.state_changed")
    assert (change["data"]["from"], change["data"]["to"], change["data"]["action"]) == (
        "new",
        "solved",
        "solve",
    )


async def test_a_refused_action_writes_no_event_and_no_record(desk: Desk) -> None:
    case = await desk.new_case()
    before = await desk.events()
    refused = await desk.act(case["id"], "reopen")
    assert refused.status_code == 409
    assert await desk.events() == before
    history = (await _history(desk, case["id"])).json()["items"]
    assert [item["code"] for item in history] == ["case.create"]


async def test_another_tenant_never_sees_these_events(
    desk: Desk, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    case = await desk.new_case()
    await _act(desk, case["id"], "start")
    await _act(desk, case["id"], "close")
    mine = await desk.events()
    assert len(mine) == 6

    other = await make_desk(client, await tenants.create(), tenants.container)
    assert await other.events() == []
    assert await other.events(type="case.closed") == []
    theirs = await other.new_case()
    seen = await other.events()
    assert [e["type"] for e in seen] == ["case.created", "task.created"]
    assert {e["subject"] for e in seen} == {theirs["id"]}
    assert {e["source"] for e in seen} == {f"/tenants/{other.tenant.id}/cases"}
    assert await desk.events() == mine


def _held_event(tenant_id: uuid.UUID, case_id: str) -> OutboxEvent:
    return OutboxEvent(
        tenant_id=tenant_id,
        event_id=uuid7(),
        type="comment.added",
        source=f"/tenants/{tenant_id}/cases",
        subject_id=uuid.UUID(case_id),
        data={"case": {"id": case_id}, "comment": {"body": "late"}},
        traceparent=_new_traceparent()[1],
    )


async def test_an_event_committed_late_is_not_skipped_by_a_reader_who_moved_on(
    desk: Desk, backend: str
) -> None:
    """A transaction that took its sequence first but commits last: a reader who already
    read past that sequence still gets the event, after the ones it has seen."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one writer at a time: transactions cannot interleave")
    first = await desk.new_case()
    seen = await desk.events()
    async with UnitOfWork(desk.container.database, desk.tenant.id) as held:
        await held.begin_write()
        held.outbox.add_all([_held_event(desk.tenant.id, first["id"])])
        await held.flush()  # the sequence is taken now, the commit comes later
        second = await desk.new_case()
        page = (await _feed(desk, after=_position(seen[-1]))).json()
        assert [e["subject"] for e in page["items"]] == [second["id"], second["id"]]
        cursor = page["next_after"]
        await held.commit()
    late = (await _feed(desk, after=cursor)).json()["items"]
    assert [(e["type"], e["data"]["comment"]["body"]) for e in late] == [("comment.added", "late")]
    assert int(late[0]["sequence"]) < int(page["items"][0]["sequence"])
    assert int(late[0]["position"]) > cursor


async def test_positions_grow_are_unique_and_stay_put_when_a_batch_is_marked_again(
    desk: Desk,
) -> None:
    await desk.new_case()
    await desk.new_case()
    events = await desk.events()
    positions = [_position(e) for e in events]
    assert positions == sorted(set(positions))
    async with UnitOfWork(desk.container.database) as uow:
        await uow.begin_write()
        await uow.outbox.mark_published([int(e["sequence"]) for e in events])
        await uow.commit()
    assert [_position(e) for e in await desk.events()] == positions
