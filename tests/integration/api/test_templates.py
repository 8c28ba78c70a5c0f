"""Templates over HTTP: what they refer to is checked, and their form schema guards cases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.cases import BASIC_MACHINE, FORM_SCHEMA, Desk, make_desk

URL = "/api/v1/templates"
PROBLEM = "application/problem+json"

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["product", "quantity"],
    "properties": {
        "product": {"type": "string", "minLength": 1},
        "quantity": {"type": "integer", "minimum": 1},
        "address": {
            "type": "object",
            "required": ["zip"],
            "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
        },
    },
}


def template_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": "order",
        "name": "Order",
        "state_machine": "basic",
        "default_queue": "support",
        "form_schema": ORDER_SCHEMA,
    }
    return body | changes


def update_body(**changes: Any) -> dict[str, Any]:
    body = template_body(**changes)
    del body["code"]
    return body


async def create(desk: Desk, **changes: Any) -> dict[str, Any]:
    response = await desk.http.post(URL, json=template_body(**changes), headers=desk.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def failing_fields(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


async def test_a_template_is_created_read_back_and_listed(desk: Desk) -> None:
    created = await create(desk)
    assert created["code"] == "order"
    assert created["name"] == "Order"
    assert created["state_machine"] == "basic"
    assert created["default_queue"] == "support"
    assert created["default_priority"] == "normal"
    assert created["form_schema"] == ORDER_SCHEMA

    read = await desk.http.get(f"{URL}/order", headers=desk.headers)
    assert read.status_code == 200
    assert read.json() == created

    listed = await desk.http.get(URL, headers=desk.headers)
    assert listed.status_code == 200
    assert sorted(t["code"] for t in listed.json()) == ["order", "question"]
    question = next(t for t in listed.json() if t["code"] == "question")
    assert question["form_schema"] == FORM_SCHEMA


async def test_a_template_is_private_until_marked_public_for_the_portal(desk: Desk) -> None:
    created = await create(desk)
    assert created["public"] is False
    updated = await desk.http.put(
        f"{URL}/order", json=update_body(public=True), headers=desk.headers
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["public"] is True
    read = await desk.http.get(f"{URL}/order", headers=desk.headers)
    assert read.json()["public"] is True
    refused = await desk.http.put(
        f"{URL}/order", json=update_body(public="sometimes"), headers=desk.headers
    )
    assert refused.status_code == 422
    assert "public" in refused.text
    assert (await desk.http.get(f"{URL}/order", headers=desk.headers)).json()["public"] is True


async def test_a_template_without_a_form_schema_accepts_any_object(desk: Desk) -> None:
    body = template_body(code="plain")
    del body["form_schema"]
    created = await desk.http.post(URL, json=body, headers=desk.headers)
    assert created.status_code == 201, created.text
    assert created.json()["form_schema"] == {"type": "object"}
    case = await desk.new_case(template="plain", form={"anything": [1, 2]})
    assert case["form"] == {"anything": [1, 2]}


async def test_put_updates_a_template_and_new_cases_follow_it(desk: Desk) -> None:
    created = await create(desk)
    updated = await desk.http.put(
        f"{URL}/order",
        json=update_body(
            name="Order v2",
            default_queue="billing",
            default_priority="high",
            form_schema={"type": "object"},
        ),
        headers=desk.headers,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == created["id"]
    assert updated.json()["name"] == "Order v2"
    assert updated.json()["default_queue"] == "billing"
    assert updated.json()["default_priority"] == "high"
    assert updated.json()["form_schema"] == {"type": "object"}

    read = await desk.http.get(f"{URL}/order", headers=desk.headers)
    assert read.json()["name"] == "Order v2"
    assert read.json()["default_queue"] == "billing"

    case = await desk.new_case(template="order", form={})
    assert case["template"] == "order"
    assert case["queue"] == "billing"
    assert case["priority"] == "high"


async def test_put_on_an_unknown_template_is_404(desk: Desk) -> None:
    response = await desk.http.put(f"{URL}/nothing", json=update_body(), headers=desk.headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert (await desk.http.get(f"{URL}/nothing", headers=desk.headers)).status_code == 404


async def test_a_duplicate_code_is_409_and_the_first_template_is_kept(desk: Desk) -> None:
    await create(desk)
    duplicate = await desk.http.post(
        URL, json=template_body(name="Second", default_queue="billing"), headers=desk.headers
    )
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == PROBLEM
    assert duplicate.json()["field"] == "code"
    kept = await desk.http.get(f"{URL}/order", headers=desk.headers)
    assert kept.json()["name"] == "Order"
    assert kept.json()["default_queue"] == "support"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"state_machine": "nope"}, "state_machine", id="unknown-machine"),
        pytest.param({"default_queue": "nope"}, "default_queue", id="unknown-queue"),
    ],
)
async def test_an_unknown_reference_is_422_naming_the_field(
    desk: Desk, changes: dict[str, Any], field: str
) -> None:
    response = await desk.http.post(URL, json=template_body(**changes), headers=desk.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["field"] == field
    assert "nope" in response.json()["detail"]
    assert (await desk.http.get(f"{URL}/order", headers=desk.headers)).status_code == 404


async def test_a_machine_without_a_published_version_is_422(desk: Desk) -> None:
    draft = await desk.http.post(
        "/api/v1/state-machines",
        json={"code": "unpublished", "name": "Unpublished"} | BASIC_MACHINE,
        headers=desk.headers,
    )
    assert draft.status_code == 200, draft.text
    response = await desk.http.post(
        URL, json=template_body(state_machine="unpublished"), headers=desk.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "state_machine"
    assert "no published version" in response.json()["detail"]
    assert (await desk.http.get(f"{URL}/order", headers=desk.headers)).status_code == 404


async def test_an_invalid_json_schema_is_422_naming_where_it_is_wrong(desk: Desk) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "no-such-type"}}}
    response = await desk.http.post(
        URL, json=template_body(form_schema=schema), headers=desk.headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["field"] == "form_schema.properties.a.type"
    assert failing_fields(response) == {"form_schema.properties.a.type"}
    assert response.json()["errors"][0]["type"] == "json_schema"
    assert (await desk.http.get(f"{URL}/order", headers=desk.headers)).status_code == 404


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"type": "array", "items": {"type": "string"}}, id="array"),
        pytest.param({"type": "string"}, id="string"),
    ],
)
async def test_a_form_schema_that_is_not_an_object_is_422(
    desk: Desk, schema: dict[str, Any]
) -> None:
    response = await desk.http.post(
        URL, json=template_body(form_schema=schema), headers=desk.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "form_schema.type"
    assert "object" in response.json()["detail"]


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param("#/$defs/missing", id="dangling-local-ref"),
        pytest.param("https://schemas.example.invalid/zip.json", id="remote-ref"),
    ],
)
async def test_a_form_schema_with_an_unresolvable_ref_is_refused(desk: Desk, ref: str) -> None:
    schema = {"type": "object", "properties": {"zip": {"$ref": ref}}}
    response = await desk.http.post(
        URL, json=template_body(code="refs", form_schema=schema), headers=desk.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"].startswith("form_schema")


async def test_an_invalid_schema_on_update_keeps_the_stored_one(desk: Desk) -> None:
    await create(desk)
    response = await desk.http.put(
        f"{URL}/order", json=update_body(form_schema={"type": "array"}), headers=desk.headers
    )
    assert response.status_code == 422
    kept = await desk.http.get(f"{URL}/order", headers=desk.headers)
    assert kept.json()["form_schema"] == ORDER_SCHEMA


async def test_a_case_form_is_checked_against_the_schema_naming_every_failing_path(
    desk: Desk,
) -> None:
    await create(desk)
    response = await desk.create_case(
        template="order", form={"quantity": "three", "address": {"zip": 12345}}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["field"] == "form"
    errors = {error["field"]: error["type"] for error in body["errors"]}
    assert errors == {
        "form.product": "json_schema.required",
        "form.quantity": "json_schema.type",
        "form.address.zip": "json_schema.type",
    }
    for path in errors:
        assert path in body["detail"]


async def test_a_nested_missing_field_and_a_broken_rule_are_reported_together(
    desk: Desk,
) -> None:
    await create(desk)
    response = await desk.create_case(
        template="order", form={"product": "", "quantity": 0, "address": {}}
    )
    assert response.status_code == 422, response.text
    errors = {error["field"]: error["type"] for error in response.json()["errors"]}
    assert errors == {
        "form.product": "json_schema.minLength",
        "form.quantity": "json_schema.minimum",
        "form.address.zip": "json_schema.required",
    }


async def test_array_items_are_named_by_index(desk: Desk) -> None:
    schema = {
        "type": "object",
        "properties": {"serials": {"type": "array", "items": {"type": "string"}}},
    }
    await create(desk, code="serials", form_schema=schema)
    response = await desk.create_case(template="serials", form={"serials": ["A-1", 2, "C-3", 4]})
    assert response.status_code == 422, response.text
    assert failing_fields(response) == {"form.serials[1]", "form.serials[3]"}


async def test_the_desk_question_template_checks_its_form(desk: Desk) -> None:
    response = await desk.create_case(form={"quantity": 2.5, "address": {"zip": "ABCDE"}})
    assert response.status_code == 422, response.text
    errors = {error["field"]: error["type"] for error in response.json()["errors"]}
    assert errors == {
        "form.quantity": "json_schema.type",
        "form.address.zip": "json_schema.pattern",
    }


async def test_a_valid_form_creates_the_case_and_a_refused_one_creates_nothing(
    desk: Desk,
) -> None:
    await create(desk)
    refused = await desk.create_case(template="order", form={"product": "P-1"})
    assert refused.status_code == 422
    assert failing_fields(refused) == {"form.quantity"}

    form = {"product": "P-1", "quantity": 3, "address": {"zip": "12345"}}
    case = await desk.new_case(template="order", form=form)
    assert case["form"] == form
    assert case["template"] == "order"
    listed = await desk.http.get(
        "/api/v1/cases", params={"template": "order"}, headers=desk.headers
    )
    assert [c["id"] for c in listed.json()["items"]] == [case["id"]]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT])
async def test_only_admins_create_or_change_templates(
    desk: Desk, tenants: Tenants, role: Role
) -> None:
    member = await tenants.member(desk.tenant.id, role)
    created = await desk.http.post(URL, json=template_body(), headers=member.headers)
    assert created.status_code == 403
    assert created.headers["content-type"] == PROBLEM
    assert "admin" in created.json()["detail"]
    changed = await desk.http.put(
        f"{URL}/question", json=update_body(name="Hijacked"), headers=member.headers
    )
    assert changed.status_code == 403

    read = await desk.http.get(f"{URL}/question", headers=member.headers)
    assert read.status_code == 200
    assert read.json()["name"] == "Question"
    assert (await desk.http.get(f"{URL}/order", headers=desk.headers)).status_code == 404


async def test_another_tenants_template_is_404_and_cannot_start_a_case(
    desk: Desk, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    other = await make_desk(client, await tenants.create(), tenants.container)
    await create(other, code="secret", name="Secret")

    assert (await client.get(f"{URL}/secret", headers=desk.headers)).status_code == 404
    changed = await client.put(
        f"{URL}/secret", json=update_body(name="Hijacked"), headers=desk.headers
    )
    assert changed.status_code == 404
    listed = await client.get(URL, headers=desk.headers)
    assert "secret" not in {t["code"] for t in listed.json()}

    response = await desk.create_case(template="secret")
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "template"

    theirs = await client.get(f"{URL}/secret", headers=other.headers)
    assert theirs.json()["name"] == "Secret"


async def test_another_tenants_machine_and_queue_cannot_be_used(
    desk: Desk, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    other = await make_desk(client, await tenants.create(), tenants.container)
    machine = await client.post(
        "/api/v1/state-machines",
        json={"code": "theirs", "name": "Theirs"} | BASIC_MACHINE,
        headers=other.headers,
    )
    assert machine.status_code == 200
    published = await client.post("/api/v1/state-machines/theirs/publish", headers=other.headers)
    assert published.status_code == 201
    queue = await client.post(
        "/api/v1/queues", json={"code": "their-queue", "name": "Theirs"}, headers=other.headers
    )
    assert queue.status_code == 201

    by_machine = await desk.http.post(
        URL, json=template_body(state_machine="theirs"), headers=desk.headers
    )
    assert by_machine.status_code == 422
    assert by_machine.json()["field"] == "state_machine"
    by_queue = await desk.http.post(
        URL, json=template_body(default_queue="their-queue"), headers=desk.headers
    )
    assert by_queue.status_code == 422
    assert by_queue.json()["field"] == "default_queue"
