"""State machines over HTTP: drafts, validated publishing, immutable versions, isolation."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.cases import BASIC_MACHINE, Desk, make_desk

URL = "/api/v1/state-machines"
PROBLEM = "application/problem+json"

Mutation = Callable[[dict[str, Any]], None]


def machine_body(
    code: str = "flow", name: str = "Flow", mutate: Mutation | None = None
) -> dict[str, Any]:
    definition = copy.deepcopy(BASIC_MACHINE)
    if mutate is not None:
        mutate(definition)
    return {"code": code, "name": name} | definition


def as_stored(body: dict[str, Any]) -> dict[str, Any]:
    """The draft as the API gives it back: no code/name, every transition with ``reopen``."""
    return {
        "states": body["states"],
        "transitions": [{"reopen": False} | t for t in body["transitions"]],
    }


def field_and_rule(problems: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(problem["field"], problem["rule"]) for problem in problems]


async def save(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = await client.post(URL, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def read(client: httpx.AsyncClient, headers: dict[str, str], code: str) -> Any:
    response = await client.get(f"{URL}/{code}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_saving_the_same_code_twice_replaces_the_draft(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    first_body = machine_body()
    first = await save(client, tenant.headers, first_body)
    assert first == {
        "code": "flow",
        "name": "Flow",
        "draft": as_stored(first_body),
        "draft_problems": [],
        "latest_version": 0,
        "versions": [],
    }

    def without_solve(definition: dict[str, Any]) -> None:
        del definition["transitions"][1]

    second_body = machine_body(name="Flow, revised", mutate=without_solve)
    second = await save(client, tenant.headers, second_body)
    assert second["name"] == "Flow, revised"
    assert [t["action"] for t in second["draft"]["transitions"]] == [
        "start",
        "wait",
        "resume",
        "close",
        "reopen",
    ]

    read_back = await read(client, tenant.headers, "flow")
    assert read_back == second
    assert read_back["draft"] == as_stored(second_body)
    listed = await client.get(URL, headers=tenant.headers)
    assert [m["code"] for m in listed.json()] == ["flow"]


async def test_publishing_freezes_version_1_then_version_2(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    v1_body = machine_body()
    await save(client, tenant.headers, v1_body)
    first = await client.post(f"{URL}/flow/publish", headers=tenant.headers)
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1
    assert first.json()["definition"] == as_stored(v1_body)
    assert first.json()["published_at"]

    def renamed(definition: dict[str, Any]) -> None:
        definition["states"][0]["name"] = "Fresh"

    v2_body = machine_body(mutate=renamed)
    await save(client, tenant.headers, v2_body)
    second = await client.post(f"{URL}/flow/publish", headers=tenant.headers)
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2
    assert second.json()["definition"]["states"][0]["name"] == "Fresh"

    machine = await read(client, tenant.headers, "flow")
    assert machine["latest_version"] == 2
    assert [v["version"] for v in machine["versions"]] == [1, 2]
    assert machine["draft"] == as_stored(v2_body)

    v1 = await client.get(f"{URL}/flow/versions/1", headers=tenant.headers)
    assert v1.status_code == 200
    assert v1.json()["version"] == 1
    assert v1.json()["definition"] == as_stored(v1_body)
    v2 = await client.get(f"{URL}/flow/versions/2", headers=tenant.headers)
    assert v2.json()["definition"] == as_stored(v2_body)

    missing = await client.get(f"{URL}/flow/versions/3", headers=tenant.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM


async def test_editing_the_draft_never_changes_a_published_version(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    published_body = machine_body()
    await save(client, tenant.headers, published_body)
    assert (await client.post(f"{URL}/flow/publish", headers=tenant.headers)).status_code == 201

    def renamed(definition: dict[str, Any]) -> None:
        definition["states"][1]["name"] = "Being worked on"

    await save(client, tenant.headers, machine_body(name="Renamed", mutate=renamed))
    v1 = await client.get(f"{URL}/flow/versions/1", headers=tenant.headers)
    assert v1.json()["definition"] == as_stored(published_body)
    assert (await read(client, tenant.headers, "flow"))["latest_version"] == 1


def _no_start(d: dict[str, Any]) -> None:
    d["states"][0]["type"] = "normal"


def _two_starts(d: dict[str, Any]) -> None:
    d["states"][1]["type"] = "start"


def _no_end(d: dict[str, Any]) -> None:
    d["states"][3]["type"] = "normal"
    del d["transitions"][5]  # the reopen would otherwise also be misplaced


def _unreachable(d: dict[str, Any]) -> None:
    d["states"].append({"code": "limbo", "name": "Limbo", "type": "normal"})
    d["transitions"].append({"action": "finish", "name": "Finish", "from": "limbo", "to": "solved"})


def _dead_end(d: dict[str, Any]) -> None:
    d["states"].append({"code": "stuck", "name": "Stuck", "type": "normal"})
    d["transitions"].append({"action": "park", "name": "Park", "from": "open", "to": "stuck"})


def _unknown_target(d: dict[str, Any]) -> None:
    d["transitions"].append(
        {"action": "escalate", "name": "Escalate", "from": "open", "to": "nowhere"}
    )


def _unknown_source(d: dict[str, Any]) -> None:
    d["transitions"].append({"action": "drop", "name": "Drop", "from": "limbo", "to": "solved"})


def _duplicate_action(d: dict[str, Any]) -> None:
    d["transitions"].append(
        {"action": "close", "name": "Close again", "from": "open", "to": "waiting"}
    )


def _exit_from_end(d: dict[str, Any]) -> None:
    d["transitions"].append({"action": "undo", "name": "Undo", "from": "solved", "to": "open"})


def _duplicate_state(d: dict[str, Any]) -> None:
    d["states"].append({"code": "open", "name": "Open again", "type": "normal"})


def _misplaced_reopen(d: dict[str, Any]) -> None:
    d["transitions"].append(
        {"action": "redo", "name": "Redo", "from": "open", "to": "waiting", "reopen": True}
    )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(_no_start, [("states", "one_start_state")], id="no-start-state"),
        pytest.param(_two_starts, [("states", "one_start_state")], id="two-start-states"),
        pytest.param(_no_end, [("states", "no_end_state")], id="no-end-state"),
        pytest.param(_unreachable, [("states[4]", "unreachable_state")], id="unreachable"),
        pytest.param(_dead_end, [("states[4]", "dead_end_state")], id="dead-end"),
        pytest.param(
            _unknown_target, [("transitions[6].to", "unknown_state")], id="unknown-target"
        ),
        pytest.param(
            _unknown_source, [("transitions[6].from", "unknown_state")], id="unknown-source"
        ),
        pytest.param(
            _duplicate_action, [("transitions[6]", "duplicate_action")], id="duplicate-action"
        ),
        pytest.param(
            _exit_from_end, [("transitions[6]", "exit_from_end_state")], id="exit-from-end"
        ),
        pytest.param(
            _duplicate_state, [("states[4].code", "duplicate_state")], id="duplicate-state"
        ),
        pytest.param(
            _misplaced_reopen,
            [("transitions[6]", "reopen_not_from_end_state")],
            id="reopen-not-from-end",
        ),
    ],
)
async def test_each_rule_refuses_publishing_naming_the_rule_and_field(
    client: httpx.AsyncClient,
    tenants: Tenants,
    mutate: Mutation,
    expected: list[tuple[str, str]],
) -> None:
    tenant = await tenants.create()
    saved = await save(client, tenant.headers, machine_body(mutate=mutate))
    assert field_and_rule(saved["draft_problems"]) == expected

    published = await client.post(f"{URL}/flow/publish", headers=tenant.headers)
    assert published.status_code == 422, published.text
    assert published.headers["content-type"] == PROBLEM
    errors = published.json()["errors"]
    assert field_and_rule(errors) == expected
    assert all(error["type"] == error["rule"] and error["message"] for error in errors)

    machine = await read(client, tenant.headers, "flow")
    assert machine["latest_version"] == 0
    assert machine["versions"] == []
    unpublished = await client.get(f"{URL}/flow/versions/1", headers=tenant.headers)
    assert unpublished.status_code == 404


async def test_a_draft_breaking_several_rules_reports_all_of_them_and_publishes_nothing(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    await save(client, tenant.headers, machine_body())
    assert (await client.post(f"{URL}/flow/publish", headers=tenant.headers)).status_code == 201

    def broken(d: dict[str, Any]) -> None:
        _two_starts(d)
        d["states"].append({"code": "limbo", "name": "Limbo", "type": "normal"})
        _unknown_target(d)
        _duplicate_action(d)
        _exit_from_end(d)

    await save(client, tenant.headers, machine_body(mutate=broken))
    published = await client.post(f"{URL}/flow/publish", headers=tenant.headers)
    assert published.status_code == 422, published.text
    assert field_and_rule(published.json()["errors"]) == [
        ("states", "one_start_state"),
        ("transitions[6].to", "unknown_state"),
        ("transitions[7]", "duplicate_action"),
        ("transitions[8]", "exit_from_end_state"),
        ("states[4]", "dead_end_state"),
    ]
    assert "5 problem(s)" in published.json()["detail"]

    machine = await read(client, tenant.headers, "flow")
    assert machine["latest_version"] == 1
    assert [v["version"] for v in machine["versions"]] == [1]
    assert len(machine["draft_problems"]) == 5
    assert (await client.get(f"{URL}/flow/versions/2", headers=tenant.headers)).status_code == 404


async def test_concurrent_publishes_get_consecutive_versions_or_a_conflict(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    statuses: list[int] = []
    published: list[int] = []
    for round_ in range(3):

        def renamed(definition: dict[str, Any], name: str = f"New {round_}") -> None:
            definition["states"][0]["name"] = name

        await save(client, tenant.headers, machine_body(mutate=renamed))
        responses = await asyncio.gather(
            *(client.post(f"{URL}/flow/publish", headers=tenant.headers) for _ in range(8))
        )
        statuses += [response.status_code for response in responses]
        published += [r.json()["version"] for r in responses if r.status_code == 201]
        # The publishes that come after the first find the draft published already.
        repeated = [r.json() for r in responses if r.status_code == 200]
        assert all(answer["unchanged"] for answer in repeated)
        assert {answer["version"] for answer in repeated} <= {round_ + 1}

    assert set(statuses) <= {200, 201, 409}
    machine = await read(client, tenant.headers, "flow")
    assert sorted(published) == list(range(1, machine["latest_version"] + 1))
    assert [v["version"] for v in machine["versions"]] == sorted(published)


def _bad_code(body: dict[str, Any]) -> None:
    body["code"] = "Bad Code"


def _missing_states(body: dict[str, Any]) -> None:
    del body["states"]


def _no_states(body: dict[str, Any]) -> None:
    body["states"] = []


def _unknown_field(body: dict[str, Any]) -> None:
    body["colour"] = "red"


def _bad_state_code(body: dict[str, Any]) -> None:
    body["states"][1]["code"] = "Open State"


def _bad_state_type(body: dict[str, Any]) -> None:
    body["states"][1]["type"] = "limbo"


def _transition_without_target(body: dict[str, Any]) -> None:
    del body["transitions"][2]["to"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        pytest.param(_bad_code, "code", id="bad-code"),
        pytest.param(_missing_states, "states", id="missing-states"),
        pytest.param(_no_states, "states", id="empty-states"),
        pytest.param(_unknown_field, "colour", id="unknown-field"),
        pytest.param(_bad_state_code, "states.1.code", id="bad-state-code"),
        pytest.param(_bad_state_type, "states.1.type", id="bad-state-type"),
        pytest.param(_transition_without_target, "transitions.2.to", id="transition-no-to"),
    ],
)
async def test_a_structurally_wrong_draft_is_422_at_save_naming_the_field(
    client: httpx.AsyncClient, tenants: Tenants, mutate: Mutation, field: str
) -> None:
    tenant = await tenants.create()
    body = machine_body()
    mutate(body)
    response = await client.post(URL, json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert field in {error["field"] for error in response.json()["errors"]}
    assert (await client.get(URL, headers=tenant.headers)).json() == []


async def test_a_case_keeps_the_machine_version_it_was_created_with(desk: Desk) -> None:
    old = await desk.new_case()
    assert old["state_machine"] == {"code": "basic", "version": 1}

    def revised(d: dict[str, Any]) -> None:
        d["states"][0]["name"] = "Fresh"
        del d["transitions"][1]  # "solve" straight from "new"

    await save(desk.http, desk.headers, machine_body("basic", "Basic", mutate=revised))
    published = await desk.http.post(f"{URL}/basic/publish", headers=desk.headers)
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 2

    old_now = await desk.http.get(f"/api/v1/cases/{old['id']}", headers=desk.headers)
    assert old_now.status_code == 200
    assert old_now.json()["state_machine"] == {"code": "basic", "version": 1}
    assert old_now.json()["current_state"] == {"code": "new", "name": "New", "type": "start"}
    assert [a["action"] for a in old_now.json()["allowed_actions"]] == ["start", "solve"]

    new = await desk.new_case(title="After the change")
    assert new["state_machine"] == {"code": "basic", "version": 2}
    assert new["current_state"]["name"] == "Fresh"
    assert [a["action"] for a in new["allowed_actions"]] == ["start"]

    solved_old = await desk.act(old["id"], "solve")
    assert solved_old.status_code == 200, solved_old.text
    assert solved_old.json()["state"] == "solved"
    refused_new = await desk.act(new["id"], "solve")
    assert refused_new.status_code == 409


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT])
async def test_only_admins_save_or_publish_a_machine(
    desk: Desk, tenants: Tenants, role: Role
) -> None:
    member = await tenants.member(desk.tenant.id, role)
    before = await read(desk.http, desk.headers, "basic")

    saved = await desk.http.post(
        URL, json=machine_body("basic", "Hijacked"), headers=member.headers
    )
    assert saved.status_code == 403
    assert saved.headers["content-type"] == PROBLEM
    assert "admin" in saved.json()["detail"]
    created = await desk.http.post(URL, json=machine_body("other"), headers=member.headers)
    assert created.status_code == 403
    published = await desk.http.post(f"{URL}/basic/publish", headers=member.headers)
    assert published.status_code == 403

    assert await read(desk.http, member.headers, "basic") == before
    missing = await desk.http.get(f"{URL}/other", headers=desk.headers)
    assert missing.status_code == 404


async def test_another_tenants_machine_is_404_and_its_code_is_free_here(
    desk: Desk, tenants: Tenants
) -> None:
    other = await tenants.create()
    http = desk.http
    assert (await http.get(f"{URL}/basic", headers=other.headers)).status_code == 404
    published = await http.post(f"{URL}/basic/publish", headers=other.headers)
    assert published.status_code == 404
    assert published.headers["content-type"] == PROBLEM
    version = await http.get(f"{URL}/basic/versions/1", headers=other.headers)
    assert version.status_code == 404
    assert (await http.get(URL, headers=other.headers)).json() == []

    own = await save(http, other.headers, machine_body("basic", "Theirs"))
    assert own["latest_version"] == 0
    assert own["versions"] == []
    mine = await read(http, desk.headers, "basic")
    assert mine["name"] == "Basic"
    assert mine["latest_version"] == 1


async def test_publishing_an_unchanged_draft_answers_the_latest_version_and_publishes_nothing(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    await save(client, tenant.headers, machine_body())
    first = await client.post(f"{URL}/flow/publish", headers=tenant.headers)
    assert first.status_code == 201
    assert first.json()["unchanged"] is False

    again = await client.post(f"{URL}/flow/publish", headers=tenant.headers)
    assert again.status_code == 200, again.text
    assert again.json()["unchanged"] is True
    assert again.json()["version"] == 1
    assert again.json()["published_at"] == first.json()["published_at"]
    # Saving the same draft again changes nothing either.
    await save(client, tenant.headers, machine_body())
    assert (await client.post(f"{URL}/flow/publish", headers=tenant.headers)).status_code == 200
    machine = await read(client, tenant.headers, "flow")
    assert machine["latest_version"] == 1
    assert [v["version"] for v in machine["versions"]] == [1]


async def test_an_unknown_machine_is_404(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create()
    assert (await client.get(f"{URL}/nothing", headers=tenant.headers)).status_code == 404
    published = await client.post(f"{URL}/nothing/publish", headers=tenant.headers)
    assert published.status_code == 404


async def test_two_desks_publish_independently(client: httpx.AsyncClient, tenants: Tenants) -> None:
    first = await make_desk(client, await tenants.create(), tenants.container)
    second = await make_desk(client, await tenants.create(), tenants.container)

    def renamed(definition: dict[str, Any]) -> None:
        definition["states"][0]["name"] = "Fresh"

    await save(client, first.headers, machine_body(code="basic", name="Basic", mutate=renamed))
    again = await client.post(f"{URL}/basic/publish", headers=first.headers)
    assert again.json()["version"] == 2
    assert (await read(client, second.headers, "basic"))["latest_version"] == 1
