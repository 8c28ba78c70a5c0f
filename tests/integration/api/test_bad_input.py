"""Bad input is a clear 4xx problem naming what is wrong, never a 500, and loses nothing."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from casedesk.api.routing import ApiRoute
from casedesk.domain.identity.roles import Role
from casedesk.store.cases import CaseFilter
from tests.conftest import Tenants
from tests.support.cases import Desk

PROBLEM = "application/problem+json"


async def test_malformed_json_is_400(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create()
    response = await client.post(
        "/api/v1/users",
        content=b'{"email": "a@b.co", "name": ',
        headers=tenant.headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Malformed JSON"


async def test_wrong_types_are_422_naming_each_field(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    response = await client.post(
        "/api/v1/users",
        json={"email": 42, "name": ["x"], "role": "overlord"},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"email", "name", "role"}
    assert "email" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "name": "X"}, "email"),
        ({"email": "a@b.co", "name": ""}, "name"),
        ({"email": "a@b.co", "name": "x" * 201}, "name"),
        ({"email": "a@b.co", "name": "X", "surprise": 1}, "surprise"),
        ({"name": "X"}, "email"),
    ],
)
async def test_invalid_values_name_the_field(
    client: httpx.AsyncClient, tenants: Tenants, body: dict[str, object], field: str
) -> None:
    tenant = await tenants.create()
    response = await client.post("/api/v1/users", json=body, headers=tenant.headers)
    assert response.status_code == 422
    assert field in {error["field"] for error in response.json()["errors"]}


async def test_a_body_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    for body in ([1, 2], "text", 7, None):
        response = await client.post("/api/v1/users", json=body, headers=tenant.headers)
        assert response.status_code in (400, 422), body
        assert response.headers["content-type"] == PROBLEM


async def test_an_oversized_body_is_413(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create()
    huge = b'{"email": "a@b.co", "name": "' + b"x" * 2_000_000 + b'"}'
    declared = await client.post(
        "/api/v1/users", content=huge, headers=tenant.headers | {"Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == PROBLEM

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    streamed = await client.post(
        "/api/v1/users",
        content=chunks(),
        headers=tenant.headers | {"Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == PROBLEM
    listed = await client.get("/api/v1/users", headers=tenant.headers)
    assert len(listed.json()["items"]) == 1


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/users/not-a-uuid", "user_id"),
        ("/api/v1/users?limit=0", "limit"),
        ("/api/v1/users?limit=1000", "limit"),
        ("/api/v1/users?limit=ten", "limit"),
        ("/api/v1/users?cursor=%%%", "cursor"),
        ("/api/v1/users?cursor=AAAA", "cursor"),
        ("/api/v1/api-keys/123", "key_id"),
    ],
)
async def test_bad_paths_and_queries_are_422(
    client: httpx.AsyncClient, tenants: Tenants, path: str, field: str
) -> None:
    tenant = await tenants.create()
    response = await client.get(path, headers=tenant.headers)
    assert response.status_code == 422, response.text
    body = response.json()
    named = {error["field"] for error in body.get("errors", [])} | {body.get("field")}
    assert field in named


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"/api/v1/nothing-here/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    wrong = await client.put("/api/v1/me")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == PROBLEM


async def test_a_wrong_content_type_is_a_4xx(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create()
    response = await client.post(
        "/api/v1/users",
        content=b"email=a@b.co&name=X",
        headers=tenant.headers | {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == PROBLEM


# --- one check for every route: query names, U+0000, content type, strict JSON ------------


def _fields(response: httpx.Response) -> set[str]:
    body = response.json()
    return {error["field"] for error in body.get("errors", [])} | {body.get("field")}


@pytest.mark.parametrize(
    ("path", "unknown"),
    [
        ("/api/v1/cases?query=kettle", {"query"}),
        ("/api/v1/cases?tags=vip&state=new", {"tags"}),
        ("/api/v1/users?page=2", {"page"}),
        ("/api/v1/traces?since_id=1", {"since_id"}),
        ("/api/v1/events?types=case.created", {"types"}),
        ("/healthz?verbose=1", {"verbose"}),
    ],
)
async def test_unknown_query_parameters_are_422_naming_them(
    client: httpx.AsyncClient, tenants: Tenants, path: str, unknown: set[str]
) -> None:
    tenant = await tenants.create()
    response = await client.get(path, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert unknown <= _fields(response)
    assert "unknown query parameter" in response.text


async def test_known_query_parameters_of_dependencies_are_accepted(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    response = await client.get(
        "/api/v1/traces", params={"status": "2xx", "url": "x", "limit": 5}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text


async def test_u0000_anywhere_is_422_naming_the_field_and_stores_nothing(desk: Desk) -> None:
    http, headers = desk.http, desk.headers
    refused = {
        "title": await desk.create_case(title="Printer\x00 on fire"),
        "customer.email": await desk.create_case(customer={"email": "ann\x00@example.com"}),
        "form.product": await desk.create_case(form={"product": "P\x001"}),
        "form.a\x00b": await desk.create_case(form={"a\x00b": 1}),
        "name": await http.post(
            "/api/v1/queues", json={"code": "nul", "name": "N\x00"}, headers=headers
        ),
        "email": await http.post(
            "/api/v1/users", json={"email": "a\x00@b.co", "name": "A"}, headers=headers
        ),
        "customer": await http.get("/api/v1/cases?customer=a%00b", headers=headers),
        "code": await http.get("/api/v1/state-machines/a%00b", headers=headers),
    }
    for field, response in refused.items():
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert field in _fields(response), (field, response.text)
        assert "U+0000" in response.text
    listed = await http.get("/api/v1/cases", headers=headers)
    assert listed.json()["items"] == []
    queues = await http.get("/api/v1/queues", headers=headers)
    assert "nul" not in {queue["code"] for queue in queues.json()}


@pytest.mark.parametrize(
    "content_type", [None, "application/x-www-form-urlencoded", "text/plain; charset=utf-8"]
)
async def test_a_body_not_sent_as_json_is_415_saying_so(
    desk: Desk, content_type: str | None
) -> None:
    headers = desk.headers | ({"Content-Type": content_type} if content_type else {})
    response = await desk.http.post(
        "/api/v1/cases", content=b'{"template": "question", "title": "x"}', headers=headers
    )
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == PROBLEM
    assert "application/json" in response.json()["detail"]
    assert (await desk.http.get("/api/v1/cases", headers=desk.headers)).json()["items"] == []


async def test_a_json_media_type_with_parameters_or_a_suffix_is_accepted(desk: Desk) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await desk.http.post(
            "/api/v1/cases",
            content=b'{"template": "question", "title": "x"}',
            headers=desk.headers | {"Content-Type": content_type},
        )
        assert response.status_code == 201, (content_type, response.text)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 2000 + b"]" * 2000,
        b'{"template": "question", "title": "x", "form": {"n": NaN}}',
        b'{"template": "question", "title": "x", "form": {"n": Infinity}}',
        b'{"template": "question", "title": "\\ud800"}',
    ],
    ids=["nested-2000", "nan", "infinity", "lone-surrogate"],
)
async def test_json_that_is_not_strict_json_is_400_malformed_json(desk: Desk, body: bytes) -> None:
    response = await desk.http.post(
        "/api/v1/cases", content=body, headers=desk.headers | {"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/malformed-json"
    assert (await desk.http.get("/api/v1/cases", headers=desk.headers)).json()["items"] == []


# --- free-form JSON values: bounded depth and size, named when refused --------------------


def _nested(depth: int) -> dict[str, object]:
    """A JSON object ``depth`` levels deep (``{}`` is one level)."""
    value: dict[str, object] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def test_a_form_of_16_levels_is_kept_changed_and_read_back(desk: Desk) -> None:
    created = await desk.new_case(form={"deep": _nested(15)})
    changed = await desk.http.patch(
        f"/api/v1/cases/{created['id']}",
        json={"form": {"deep": {"b": _nested(14)}}},
        headers=desk.headers,
    )
    assert changed.status_code == 200, changed.text
    read = await desk.http.get(f"/api/v1/cases/{created['id']}", headers=desk.headers)
    assert read.status_code == 200
    assert read.json()["form"]["deep"] == {"a": _nested(14), "b": _nested(14)}
    assert len(await desk.events()) == 3


@pytest.mark.parametrize("depth", [17, 32, 33, 250, 300, 1000])
async def test_a_form_nested_too_deep_is_422_naming_form_and_creates_nothing(
    desk: Desk, depth: int
) -> None:
    # Written out by hand: the standard library cannot encode 1,000 levels.
    form = b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)
    body = b'{"template": "question", "title": "Deep", "form": ' + form + b"}"
    for _ in range(2):
        response = await desk.http.post(
            "/api/v1/cases",
            content=body,
            headers=desk.headers | {"Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text[:500]
        assert response.headers["content-type"] == PROBLEM
        assert any(field.startswith("form") for field in _fields(response) if field)
    assert (await desk.http.get("/api/v1/cases", headers=desk.headers)).json()["items"] == []


async def test_free_form_values_larger_than_64_kib_are_422_naming_the_field(desk: Desk) -> None:
    big = {"blob": "x" * 70_000}
    created = await desk.create_case(form=big)
    assert created.status_code == 422
    assert "form" in _fields(created)
    case = await desk.new_case()
    patched = await desk.http.patch(
        f"/api/v1/cases/{case['id']}", json={"form": big}, headers=desk.headers
    )
    assert patched.status_code == 422
    assert "form" in _fields(patched)
    template = await desk.http.put(
        "/api/v1/templates/question",
        json={
            "name": "Q",
            "state_machine": "basic",
            "default_queue": "support",
            "form_schema": {"type": "object", "description": "x" * 70_000},
        },
        headers=desk.headers,
    )
    assert template.status_code == 422
    assert "form_schema" in _fields(template)


async def test_a_rule_whose_conditions_nest_too_deep_is_422(desk: Desk) -> None:
    conditions: dict[str, object] = {"field": "case.priority", "op": "eq", "value": "high"}
    for _ in range(16):
        conditions = {"all": [conditions]}
    response = await desk.http.post(
        "/api/v1/rules",
        json={
            "name": "deep",
            "on": ["case.created"],
            "conditions": conditions,
            "actions": [{"type": "add_tag", "tag": "x"}],
        },
        headers=desk.headers,
    )
    assert response.status_code == 422, response.text
    assert any(field.startswith("conditions") for field in _fields(response) if field)
    assert (await desk.http.get("/api/v1/rules", headers=desk.headers)).json() == []


async def test_a_rule_condition_value_nested_too_deep_is_422_naming_it(desk: Desk) -> None:
    response = await desk.http.post(
        "/api/v1/rules",
        json={
            "name": "deep",
            "on": ["case.created"],
            "conditions": {"field": "case.form.x", "op": "eq", "value": _nested(17)},
            "actions": [{"type": "add_tag", "tag": "x"}],
        },
        headers=desk.headers,
    )
    assert response.status_code == 422, response.text
    assert any("value" in field for field in _fields(response) if field)


async def test_a_created_case_whose_answer_cannot_be_rendered_is_not_committed(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    """Whatever fails while answering a create fails before its commit: a retry does not
    make a second case, and no case is left that cannot be read."""
    from casedesk.domain.extensions.scenes import CASE_DETAIL_EXTRA
    from tests.support.cases import make_desk

    edition = f"unrenderable-{uuid.uuid4().hex[:8]}"

    async def too_deep_to_render(case: object) -> dict[str, object]:
        return {"deep": _nested(300)}

    tenants.container.extensions.add(CASE_DETAIL_EXTRA, edition, too_deep_to_render)
    desk = await make_desk(client, await tenants.create(edition=edition), tenants.container)
    for _ in range(2):
        response = await desk.create_case()
        assert response.status_code == 500
        assert response.headers["content-type"] == PROBLEM
    async with tenants.container.unit_of_work(desk.tenant.id) as uow:
        page = await uow.cases.list_page(CaseFilter(), sort="-created", limit=10, cursor=None)
    assert list(page.items) == []


# --- cursors, integers, versions and instants that the database cannot take ---------------


def _cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ({"cursor": _cursor("-created", 5, "x")}, "list-shaped"),
        (
            {"cursor": _cursor("-priority", 2**40, str(uuid.uuid4())), "sort": "-priority"},
            "priority-beyond-its-column",
        ),
        ({"cursor": _cursor("cases:-created", ["x"])}, "not-an-id"),
        (
            {"cursor": _cursor("cases:-priority", [2**40, str(uuid.uuid4())]), "sort": "-priority"},
            "priority-out-of-range",
        ),
        (
            {"cursor": _cursor("cases:-number", [2**64, str(uuid.uuid4())]), "sort": "-number"},
            "number-out-of-range",
        ),
        (
            {
                "cursor": _cursor("cases:-updated", ["2024-01-01T00:00:00", str(uuid.uuid4())]),
                "sort": "-updated",
            },
            "naive-time",
        ),
        (
            {
                "cursor": _cursor(
                    "cases:-updated", ["0001-01-01T00:00:00+23:59", str(uuid.uuid4())]
                ),
                "sort": "-updated",
            },
            "overflowing-time",
        ),
        (
            {"cursor": _cursor("cases:-created", [str(uuid.uuid4())]), "sort": "-number"},
            "another-sort",
        ),
        ({"cursor": "x" * 2000}, "too-long"),
    ],
)
async def test_a_case_list_cursor_it_did_not_give_is_422(
    desk: Desk, query: dict[str, str], name: str
) -> None:
    response = await desk.http.get("/api/v1/cases", params=query, headers=desk.headers)
    assert response.status_code == 422, (name, response.text)
    assert "cursor" in _fields(response)


async def test_every_sort_pages_through_its_own_cursors(desk: Desk) -> None:
    for priority in ("low", "high", "urgent", "normal", "high"):
        await desk.new_case(priority=priority)
    for sort in (
        "-created",
        "created",
        "-updated",
        "updated",
        "-priority",
        "priority",
        "-number",
        "number",
    ):
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {"sort": sort, "limit": "2"} | ({"cursor": cursor} if cursor else {})
            page = await desk.http.get("/api/v1/cases", params=params, headers=desk.headers)
            assert page.status_code == 200, (sort, page.text)
            seen += [case["id"] for case in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 5, sort


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("traces", ["2024-01-01T00:00:00", str(uuid.uuid4())]),
        _cursor("traces", ["0001-01-01T00:00:00+23:59", str(uuid.uuid4())]),
        base64.urlsafe_b64encode(f"2024-01-01T00:00:00|{uuid.uuid4()}".encode()).decode(),
        _cursor("users", [str(uuid.uuid4())]),
    ],
    ids=["naive", "overflowing", "old-format", "another-list"],
)
async def test_a_trace_cursor_it_did_not_give_is_422(
    client: httpx.AsyncClient, tenants: Tenants, cursor: str
) -> None:
    tenant = await tenants.create()
    response = await client.get("/api/v1/traces", params={"cursor": cursor}, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert "cursor" in _fields(response)


async def test_a_cursor_of_one_list_is_refused_by_another(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    for _ in range(2):
        await tenants.member(tenant.id, Role.AGENT)
    users = await client.get("/api/v1/users", params={"limit": 1}, headers=tenant.headers)
    cursor = users.json()["next_cursor"]
    assert cursor is not None
    assert (
        await client.get("/api/v1/users", params={"cursor": cursor}, headers=tenant.headers)
    ).status_code == 200
    keys = await client.get("/api/v1/api-keys", params={"cursor": cursor}, headers=tenant.headers)
    assert keys.status_code == 422
    assert "cursor" in _fields(keys)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/state-machines/basic/versions/2147483648", "version"),
        (f"/api/v1/state-machines/basic/versions/{2**63}", "version"),
        ("/api/v1/state-machines/basic/versions/0", "version"),
        (f"/api/v1/events?after={2**63}", "after"),
    ],
)
async def test_integers_wider_than_their_column_are_422(desk: Desk, path: str, field: str) -> None:
    response = await desk.http.get(path, headers=desk.headers)
    assert response.status_code == 422, response.text
    assert field in _fields(response)


@pytest.mark.parametrize(
    "tag",
    # As sent on the wire: "²" is one Latin-1 byte, which str.isdigit() takes for a digit.
    [b'"\xb2"', b"\xb2", '"\u0661"'.encode(), b'"99999999999"', b'"-1"', b'"3.0"'],
)
async def test_an_if_match_that_is_not_a_version_is_422(desk: Desk, tag: bytes) -> None:
    case = await desk.new_case()
    response = await desk.http.patch(
        f"/api/v1/cases/{case['id']}",
        json={"title": "New"},
        headers=desk.headers | {"If-Match": tag},
    )
    assert response.status_code == 422, response.text
    assert "If-Match" in _fields(response)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/cases?created_after=0001-01-01T00:00:00%2B23:59", "created_after"),
        ("/api/v1/cases?created_before=9999-12-31T23:59:59-23:59", "created_before"),
        ("/api/v1/traces?since=0001-01-01T00:00:00%2B23:59", "since"),
        ("/api/v1/traces?until=9999-12-31T23:59:59-23:59", "until"),
        ("/api/v1/traces?since=2024-01-01T00:00:00", "since"),
    ],
)
async def test_instants_without_a_utc_form_or_a_zone_are_422(
    desk: Desk, path: str, field: str
) -> None:
    response = await desk.http.get(path, headers=desk.headers)
    assert response.status_code == 422, response.text
    assert field in _fields(response)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cases?created_after=0001-01-01T00:00:00Z",
        "/api/v1/cases?created_before=9999-12-31T23:59:59.999999Z",
        "/api/v1/cases?created_after=2024-06-01T12:00:00%2B14:00",
        "/api/v1/traces?since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z",
    ],
)
async def test_instants_at_the_ends_of_the_calendar_are_taken(desk: Desk, path: str) -> None:
    await desk.new_case()
    response = await desk.http.get(path, headers=desk.headers)
    assert response.status_code == 200, response.text


async def test_an_api_key_expiring_beyond_year_9999_in_utc_is_422(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    response = await client.post(
        "/api/v1/api-keys",
        json={"name": "far", "expires_at": "9999-12-31T23:59:59-23:59"},
        headers=tenant.headers,
    )
    assert response.status_code == 422, response.text
    assert "expires_at" in _fields(response)
    kept = await client.post(
        "/api/v1/api-keys",
        json={"name": "near", "expires_at": "2999-12-31T23:59:59+05:00"},
        headers=tenant.headers,
    )
    assert kept.status_code == 201, kept.text
    assert kept.json()["expires_at"].startswith("2999-12-31T18:59:59")


# --- texts as long as the API accepts them, on every database ------------------------------


async def test_texts_of_65536_four_byte_characters_are_kept_whole(desk: Desk) -> None:
    longest = "😀" * 65_536
    case = await desk.new_case(description=longest)
    commented = await desk.http.post(
        f"/api/v1/cases/{case['id']}/comments", json={"body": longest}, headers=desk.headers
    )
    assert commented.status_code == 201, commented.text[:300]
    solved = await desk.act(case["id"], "solve")
    assert solved.status_code == 200, solved.text[:300]
    rated = await desk.http.post(
        f"/api/v1/cases/{case['id']}/rating",
        json={"score": 5, "comment": longest},
        headers=desk.headers,
    )
    assert rated.status_code == 200, rated.text[:300]
    read = (await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert read["description"] == longest
    assert read["comments"][0]["body"] == longest
    assert read["rating"]["comment"] == longest


# --- the guards hold for every route, including those added later -------------------------


def _routes(routes: list[Any]) -> list[Any]:
    """Every route, those of included routers too (FastAPI keeps them in their router)."""
    flat: list[Any] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        flat += _routes(included.routes) if included is not None else [route]
    return flat


def test_every_api_route_runs_the_request_checks(app) -> None:  # type: ignore[no-untyped-def]
    routes = [route for route in _routes(app.routes) if isinstance(route, APIRoute)]
    documented = [route for route in routes if route.include_in_schema]
    assert len(documented) > 40
    assert [route.path for route in documented if not isinstance(route, ApiRoute)] == []


def _free_form_spots(node: Any, where: str, schemas: dict[str, Any], seen: set[str]) -> list[str]:
    """Where a request's schema takes any JSON value without the bounds of ``kit.values``."""
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _free_form_spots(schemas[name], where, schemas, seen | {name})
    spots: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in node.get(key, []):
            spots += _free_form_spots(option, where, schemas, seen)
    for name, child in node.get("properties", {}).items():
        spots += _free_form_spots(child, f"{where}.{name}", schemas, seen)
    spots += _free_form_spots(node.get("items"), f"{where}[]", schemas, seen)
    if isinstance(node.get("additionalProperties"), dict):
        spots += _free_form_spots(node["additionalProperties"], f"{where}.*", schemas, seen)
    shaped = {"type", "anyOf", "oneOf", "allOf", "enum", "const", "properties", "items"}
    any_value = not shaped & node.keys()
    any_object = (
        node.get("type") == "object"
        and not node.get("properties")
        and node.get("additionalProperties", True) is True
    )
    if (any_value or any_object) and "x-max-depth" not in node:
        spots.append(where)
    return spots


async def test_every_free_form_json_value_a_request_takes_is_bounded(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    unbounded: list[str] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                unbounded += _free_form_spots(body["schema"], f"{label} body", schemas, set())
            for parameter in operation.get("parameters", []):
                where = f"{label} {parameter['name']}"
                unbounded += _free_form_spots(parameter.get("schema"), where, schemas, set())
    assert unbounded == []


# --- the way in for a person with a browser ----------------------------------------------


async def test_the_root_sends_a_browser_to_the_sign_in_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_load_every_script_from_this_server(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
    assets += re.findall(r"""url: ?["']([^"']+)["']""", response.text)
    assert assets
    assert [asset for asset in assets if "//" in asset] == []
    for asset in assets:
        loaded = await client.get(asset)
        assert loaded.status_code == 200, asset
        assert loaded.content, asset


async def test_every_list_takes_back_the_cursors_it_gives(desk: Desk) -> None:
    """Each list pages to its end with its own cursors, whatever its key (ids, times)."""
    made = await desk.http.post(
        "/api/v1/webhooks",
        json={"name": "crm", "url": "https://crm.example.com/hooks"},
        headers=desk.headers,
    )
    assert made.status_code == 201, made.text
    webhook = made.json()["id"]
    for _ in range(3):
        sent = await desk.http.post(f"/api/v1/webhooks/{webhook}/test", headers=desk.headers)
        assert sent.status_code == 202, sent.text
    case = await desk.new_case()
    for title in ("One", "Two"):
        await desk.http.patch(
            f"/api/v1/cases/{case['id']}", json={"title": title}, headers=desk.headers
        )
    lists = {
        f"/api/v1/webhooks/{webhook}/deliveries": 3,
        f"/api/v1/cases/{case['id']}/history": 3,
        "/api/v1/api-keys": 1,
        "/api/v1/users": 1,
    }
    for path, expected in lists.items():
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {"limit": "1"} | ({"cursor": cursor} if cursor else {})
            page = await desk.http.get(path, params=params, headers=desk.headers)
            assert page.status_code == 200, (path, page.text)
            seen += [item.get("id", str(item)) for item in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == expected, path
