"""Listing cases: every filter, every sort, cursor pagination, bad parameters, tenancy."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.cases import Desk, make_desk

AGENT = "<the agent>"
"""Stands for the seeded agent's id in parametrised filters."""

# number → (fields of the create, actions applied right after it)
SEED: dict[int, tuple[dict[str, Any], list[str]]] = {
    1: ({"priority": "low", "customer": {"email": "ann@example.com"}}, []),
    2: ({"priority": "high", "queue": "billing", "assignee_id": AGENT}, ["start"]),
    3: (
        {"priority": "normal", "template": "complaint", "customer": {"email": "bob@example.com"}},
        ["solve"],
    ),
    4: (
        {"priority": "high", "queue": "billing", "customer": {"email": "ANN@example.com"}},
        ["start", "wait"],
    ),
    5: ({"priority": "urgent", "assignee_id": AGENT}, []),
    6: ({"priority": "low", "template": "complaint"}, ["start", "close"]),
    7: ({"priority": "high"}, []),
}


@dataclass
class Seeded:
    """Seven cases of one tenant, by number, as their detail after the seeding actions."""

    desk: Desk
    agent_id: str
    cases: dict[int, dict[str, Any]]

    def created_at(self, number: int) -> datetime:
        return datetime.fromisoformat(self.cases[number]["created_at"])


@pytest.fixture
async def seeded(desk: Desk, tenants: Tenants) -> Seeded:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    template = await desk.http.post(
        "/api/v1/templates",
        json={
            "code": "complaint",
            "name": "Complaint",
            "state_machine": "basic",
            "default_queue": "support",
        },
        headers=desk.headers,
    )
    assert template.status_code == 201, template.text
    cases: dict[int, dict[str, Any]] = {}
    for number, (fields, actions) in SEED.items():
        if fields.get("assignee_id") == AGENT:
            fields = fields | {"assignee_id": str(agent.id)}
        case = await desk.new_case(**fields)
        assert case["number"] == number
        for action in actions:
            acted = await desk.act(case["id"], action)
            assert acted.status_code == 200, acted.text
            case = acted.json()
        cases[number] = case
    return Seeded(desk, str(agent.id), cases)


async def _list(desk: Desk, **params: Any) -> httpx.Response:
    return await desk.http.get("/api/v1/cases", params=params, headers=desk.headers)


async def _numbers(desk: Desk, **params: Any) -> list[int]:
    response = await _list(desk, **params)
    assert response.status_code == 200, response.text
    return [item["number"] for item in response.json()["items"]]


async def _walk(desk: Desk, sort: str, limit: int) -> list[list[int]]:
    """Every page of the list in this sort, following ``next_cursor`` to the end."""
    pages: list[list[int]] = []
    cursor = None
    while len(pages) < 20:
        params = {"sort": sort, "limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await _list(desk, **params)
        assert response.status_code == 200, response.text
        pages.append([item["number"] for item in response.json()["items"]])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError(f"the {sort} list never ended: {pages}")


def _named(problem: dict[str, Any]) -> set[Any]:
    return {error["field"] for error in problem.get("errors", [])} | {problem.get("field")}


# --- filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "new"}, [7, 5, 1]),
        ({"state": "open"}, [2]),
        ({"state": "waiting"}, [4]),
        ({"state": "solved"}, [6, 3]),
        ({"state": "nowhere"}, []),
        ({"closed": "true"}, [6, 3]),
        ({"closed": "false"}, [7, 5, 4, 2, 1]),
        ({"queue": "billing"}, [4, 2]),
        ({"queue": "support"}, [7, 6, 5, 3, 1]),
        ({"assignee_id": AGENT}, [5, 2]),
        ({"template": "complaint"}, [6, 3]),
        ({"template": "question"}, [7, 5, 4, 2, 1]),
        ({"priority": "low"}, [6, 1]),
        ({"priority": "normal"}, [3]),
        ({"priority": "high"}, [7, 4, 2]),
        ({"priority": "urgent"}, [5]),
        ({"customer": "ann@example.com"}, [4, 1]),
        ({"customer": " Ann@EXAMPLE.com "}, [4, 1]),
        ({"customer": "bob@example.com"}, [3]),
        ({"customer": "nobody@example.com"}, []),
    ],
    ids=lambda value: (
        "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None
    ),
)
async def test_each_filter_alone_returns_exactly_the_matching_cases(
    seeded: Seeded, params: dict[str, str], expected: list[int]
) -> None:
    resolved = {k: seeded.agent_id if v == AGENT else v for k, v in params.items()}
    assert await _numbers(seeded.desk, **resolved) == expected


async def test_without_filters_every_case_is_listed_newest_first(seeded: Seeded) -> None:
    response = await _list(seeded.desk)
    assert response.status_code == 200
    assert [item["number"] for item in response.json()["items"]] == [7, 6, 5, 4, 3, 2, 1]
    assert response.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"queue": "billing", "state": "open"}, [2]),
        ({"queue": "support", "priority": "high", "closed": "false"}, [7]),
        ({"customer": "ann@example.com", "priority": "high"}, [4]),
        ({"customer": "ann@example.com", "queue": "support"}, [1]),
        ({"template": "complaint", "closed": "true", "priority": "low"}, [6]),
        ({"state": "new", "assignee_id": AGENT}, [5]),
        ({"queue": "billing", "priority": "urgent"}, []),
        ({"customer": "bob@example.com", "state": "new"}, []),
    ],
)
async def test_filters_combine_with_and(
    seeded: Seeded, params: dict[str, str], expected: list[int]
) -> None:
    resolved = {k: seeded.agent_id if v == AGENT else v for k, v in params.items()}
    assert await _numbers(seeded.desk, **resolved) == expected


async def test_created_after_and_before_bound_the_creation_time(seeded: Seeded) -> None:
    def between(a: int, b: int) -> str:
        earlier, later = seeded.created_at(a), seeded.created_at(b)
        assert earlier < later
        return (earlier + (later - earlier) / 2).isoformat()

    desk = seeded.desk
    assert await _numbers(desk, created_after=between(3, 4)) == [7, 6, 5, 4]
    assert await _numbers(desk, created_before=between(3, 4)) == [3, 2, 1]
    assert await _numbers(desk, created_after=between(2, 3), created_before=between(5, 6)) == [
        5,
        4,
        3,
    ]
    assert await _numbers(desk, created_after=between(6, 7), queue="support") == [7]
    assert await _numbers(desk, created_after=between(5, 6), created_before=between(2, 3)) == []


async def test_created_bounds_in_another_time_zone_mean_the_same_instant(seeded: Seeded) -> None:
    earlier, later = seeded.created_at(4), seeded.created_at(5)
    middle = earlier + (later - earlier) / 2
    kolkata = middle.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    new_york = middle.astimezone(timezone(timedelta(hours=-5))).isoformat()
    assert "+05:30" in kolkata
    assert await _numbers(seeded.desk, created_before=kolkata) == [4, 3, 2, 1]
    assert await _numbers(seeded.desk, created_after=new_york) == [7, 6, 5]


@pytest.mark.parametrize("name", ["created_after", "created_before"])
async def test_a_naive_created_bound_is_422(desk: Desk, name: str) -> None:
    response = await _list(desk, **{name: "2024-05-01T12:00:00"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert name in _named(response.json())


# --- sorts and pages ---------------------------------------------------------------------

# after case 1 is touched last: -priority breaks ties by newest first, priority by oldest
ORDERS = {
    "-created": [7, 6, 5, 4, 3, 2, 1],
    "created": [1, 2, 3, 4, 5, 6, 7],
    "-updated": [1, 7, 6, 5, 4, 3, 2],
    "updated": [2, 3, 4, 5, 6, 7, 1],
    "-priority": [5, 7, 4, 2, 3, 6, 1],
    "priority": [1, 6, 3, 2, 4, 7, 5],
    "-number": [7, 6, 5, 4, 3, 2, 1],
    "number": [1, 2, 3, 4, 5, 6, 7],
}


async def _touch_the_oldest(seeded: Seeded) -> None:
    started = await seeded.desk.act(seeded.cases[1]["id"], "start")
    assert started.status_code == 200, started.text


@pytest.mark.parametrize("sort", list(ORDERS))
async def test_each_sort_returns_its_order(seeded: Seeded, sort: str) -> None:
    await _touch_the_oldest(seeded)
    assert await _numbers(seeded.desk, sort=sort) == ORDERS[sort]


@pytest.mark.parametrize("sort", list(ORDERS))
async def test_a_cursor_walks_every_case_once_in_order(seeded: Seeded, sort: str) -> None:
    await _touch_the_oldest(seeded)
    pages = await _walk(seeded.desk, sort, limit=2)
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [number for page in pages for number in page] == ORDERS[sort]


@pytest.mark.parametrize("sort", ["-priority", "priority", "updated"])
async def test_a_page_that_ends_exactly_at_the_last_case_has_no_cursor(
    seeded: Seeded, sort: str
) -> None:
    await _touch_the_oldest(seeded)
    assert await _walk(seeded.desk, sort, limit=7) == [ORDERS[sort]]
    assert await _walk(seeded.desk, sort, limit=3) == [
        ORDERS[sort][:3],
        ORDERS[sort][3:6],
        ORDERS[sort][6:],
    ]


async def test_a_cursor_keeps_the_filters(seeded: Seeded) -> None:
    desk = seeded.desk
    first = (await _list(desk, closed="false", sort="-priority", limit=2)).json()
    assert [item["number"] for item in first["items"]] == [5, 7]
    rest = await _list(desk, closed="false", sort="-priority", limit=5, cursor=first["next_cursor"])
    assert [item["number"] for item in rest.json()["items"]] == [4, 2, 1]
    assert rest.json()["next_cursor"] is None


# --- bad parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "title"}, "sort"),
        ({"sort": "created,-number"}, "sort"),
        ({"cursor": "not a cursor!"}, "cursor"),
        ({"cursor": "AAAA"}, "cursor"),
        ({"queue": "nope"}, "queue"),
        ({"template": "nope"}, "template"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"priority": "meh"}, "priority"),
        ({"closed": "maybe"}, "closed"),
        ({"assignee_id": "not-a-uuid"}, "assignee_id"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"state_type": "asleep"}, "state_type"),
        ({"sla_due_before": "soon"}, "sla_due_before"),
    ],
)
async def test_bad_list_parameters_are_422_naming_the_field(
    desk: Desk, params: dict[str, Any], field: str
) -> None:
    response = await _list(desk, **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in _named(response.json())


@pytest.mark.parametrize(
    ("issued_for", "used_for"),
    [("number", "-number"), ("-priority", "priority"), ("created", "-updated")],
)
async def test_a_cursor_of_another_sort_is_422(
    seeded: Seeded, issued_for: str, used_for: str
) -> None:
    page = (await _list(seeded.desk, sort=issued_for, limit=2)).json()
    assert page["next_cursor"] is not None
    response = await _list(seeded.desk, sort=used_for, limit=2, cursor=page["next_cursor"])
    assert response.status_code == 422, response.text
    assert _named(response.json()) >= {"cursor"}


async def test_the_largest_page_is_accepted(seeded: Seeded) -> None:
    response = await _list(seeded.desk, limit=200)
    assert response.status_code == 200
    assert len(response.json()["items"]) == 7


def _forged_cursor(sort: str, value: Any) -> str:
    """A cursor in this API's encoding whose key has the wrong type for the sort."""
    raw = orjson.dumps([sort, value, str(uuid.uuid4())])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        ("number", "abc"),
        ("number", [1]),
        ("-priority", None),
        ("-updated", "2024-01-01T00:00:00"),
    ],
)
async def test_a_forged_cursor_with_a_key_of_the_wrong_type_is_422(
    desk: Desk, sort: str, value: Any
) -> None:
    await desk.new_case()
    response = await _list(desk, sort=sort, cursor=_forged_cursor(sort, value))
    assert response.status_code == 422, response.text
    assert _named(response.json()) >= {"cursor"}


@pytest.mark.parametrize(
    ("name", "bound"),
    [
        ("created_after", "0001-01-01T00:00:00+01:00"),
        ("created_before", "9999-12-31T23:59:59-01:00"),
    ],
)
async def test_an_extreme_aware_bound_is_not_a_server_error(
    seeded: Seeded, name: str, bound: str
) -> None:
    response = await _list(seeded.desk, **{name: bound})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert [item["number"] for item in response.json()["items"]] == [7, 6, 5, 4, 3, 2, 1]
    else:
        assert name in _named(response.json())


# --- tenancy and the summary shape -------------------------------------------------------


async def test_another_tenants_cases_never_appear(
    seeded: Seeded, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    other = await make_desk(client, await tenants.create(), tenants.container)
    theirs = await other.new_case(
        queue="billing", priority="urgent", customer={"email": "ann@example.com"}
    )
    assert await _numbers(seeded.desk, limit=200) == [7, 6, 5, 4, 3, 2, 1]
    assert await _numbers(seeded.desk, priority="urgent") == [5]
    assert await _numbers(seeded.desk, queue="billing") == [4, 2]
    assert await _numbers(seeded.desk, customer="ann@example.com") == [4, 1]
    listed = (await _list(other)).json()["items"]
    assert [item["id"] for item in listed] == [theirs["id"]]
    ours = {case["id"] for case in seeded.cases.values()}
    assert not ours & {item["id"] for item in listed}


async def test_a_summary_carries_names_and_the_version(seeded: Seeded) -> None:
    items = {item["number"]: item for item in (await _list(seeded.desk)).json()["items"]}
    new, solved = items[1], items[6]
    assert (new["state"], new["priority"], new["closed"], new["version"]) == (
        "new",
        "low",
        False,
        1,
    )
    assert (solved["state"], solved["priority"], solved["closed"], solved["version"]) == (
        "solved",
        "low",
        True,
        3,
    )
    assert solved["closed_at"] is not None
    assert items[5]["priority"] == "urgent"
    assert items[5]["assignee_id"] == seeded.agent_id
    assert "form" not in new
    assert "allowed_actions" not in new
    for number, item in items.items():
        detail = seeded.cases[number]
        assert item == {key: detail[key] for key in item}, number
        uuid.UUID(item["id"])


async def test_state_type_lists_the_cases_waiting_on_the_customer(desk: Desk) -> None:
    waiting = await desk.new_case(title="Asked the customer")
    await desk.act(waiting["id"], "start")
    await desk.act(waiting["id"], "wait")
    working = await desk.new_case(title="Still on it")
    await desk.act(working["id"], "start")
    listed = await _list(desk, state_type="pending")
    assert listed.status_code == 200, listed.text
    assert [case["id"] for case in listed.json()["items"]] == [waiting["id"]]
    started = await _list(desk, state_type="normal")
    assert [case["id"] for case in started.json()["items"]] == [working["id"]]
