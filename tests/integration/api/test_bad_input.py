"""Bad input is a clear 4xx problem naming what is wrong, never a 500, and loses nothing."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import Tenants

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
