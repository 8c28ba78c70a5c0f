"""Connectors over the API: built-ins and the tenant's own, drafts (JSON or YAML) published
as immutable versions with every problem listed, roles and tenancy."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import yaml

from casedesk.domain.identity.roles import Role
from tests.conftest import TenantHandle, Tenants
from tests.support.connections import oauth_manifest, publish

API = "/api/v1/connectors"


async def _save(
    http: httpx.AsyncClient, tenant: TenantHandle, body: str | bytes, media: str
) -> httpx.Response:
    return await http.post(API, content=body, headers=tenant.headers | {"Content-Type": media})


async def test_the_list_shows_the_built_ins_and_the_tenants_own_with_versions(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    await publish(client, tenant, oauth_manifest("acme"))
    viewer = await tenants.member(tenant.id, Role.VIEWER)
    listed = await client.get(API, headers=viewer.headers)
    assert listed.status_code == 200, listed.text
    by_id = {item["id"]: item for item in listed.json()}
    assert by_id["webhook"]["builtin"] is True
    assert by_id["rest"]["latest_version"] == 1
    assert by_id["acme"] | {"versions": None} == {
        "id": "acme",
        "name": "Acme API",
        "description": "",
        "builtin": False,
        "auth": "oauth2_code",
        "latest_version": 1,
        "versions": None,
    }
    assert [v["version"] for v in by_id["acme"]["versions"]] == [1]


async def test_a_connector_shows_its_manifest_triggers_actions_and_connection(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    builtin = (await client.get(f"{API}/webhook", headers=tenant.headers)).json()
    assert builtin["manifest"]["id"] == "webhook"
    assert [(t["name"], t["kind"]) for t in builtin["triggers"]] == [("delivery", "instant")]
    assert builtin["draft"] is None
    await publish(client, tenant, oauth_manifest("acme"))
    own = (await client.get(f"{API}/acme", headers=tenant.headers)).json()
    assert [a["name"] for a in own["actions"]] == ["me"]
    assert own["connection"]["secrets"] == [{"name": "client_secret", "title": "Client secret"}]
    assert own["connection"]["testable"] is True
    assert own["manifest"]["version"] == 1


async def test_a_draft_is_saved_as_json_or_yaml_and_shows_its_problems(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    draft = {"id": "shop", "name": "Shop", "auth": {"type": "bearer"}, "triggers": {"x": {}}}
    as_json = await _save(client, tenant, orjson.dumps(draft), "application/json")
    assert as_json.status_code == 200, as_json.text
    as_yaml = await _save(client, tenant, yaml.safe_dump(draft), "text/yaml")
    assert as_yaml.status_code == 200, as_yaml.text
    assert as_yaml.json()["draft"] == as_json.json()["draft"] == draft
    fields = {problem["field"] for problem in as_yaml.json()["draft_problems"]}
    assert {"triggers.x.kind"} <= fields
    assert as_yaml.json()["latest_version"] == 0
    read = (await client.get(f"{API}/shop", headers=tenant.headers)).json()
    assert read["draft_problems"] == as_yaml.json()["draft_problems"]


async def test_publishing_lists_every_problem_with_its_path_in_one_422(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    draft: dict[str, Any] = {
        "id": "broken",
        "name": "",
        "hooks": "not-installed",
        "actions": {"make": {"request": {"method": "BREW", "path": "/x"}}},
        "triggers": {"poll": {"kind": "polling", "polling": {"items": "a[", "request": {}}}},
    }
    await _save(client, tenant, yaml.safe_dump(draft), "application/yaml")
    refused = await client.post(f"{API}/broken/publish", headers=tenant.headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    fields = {error["field"] for error in refused.json()["errors"]}
    assert fields >= {
        "name",
        "hooks",
        "actions.make.request.method",
        "triggers.poll.polling.items",
        "triggers.poll.polling.request.path",
    }
    assert (await client.get(f"{API}/broken", headers=tenant.headers)).json()["versions"] == []


async def test_a_schema_pattern_re2_cannot_run_is_a_problem(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    manifest = oauth_manifest("regex")
    manifest["connection"]["settings"]["properties"]["client_id"]["pattern"] = "^(a)\\1$"
    await _save(client, tenant, yaml.safe_dump(manifest), "application/yaml")
    refused = await client.post(f"{API}/regex/publish", headers=tenant.headers)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == [
        "connection.settings.properties.client_id.pattern"
    ]


async def test_versions_are_immutable_and_an_unchanged_draft_answers_the_latest(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    first = await publish(client, tenant, oauth_manifest("acme"))
    assert (first["version"], first["unchanged"]) == (1, False)
    again = await client.post(f"{API}/acme/publish", headers=tenant.headers)
    assert again.status_code == 200, again.text
    assert (again.json()["version"], again.json()["unchanged"]) == (1, True)
    changed = oauth_manifest("acme") | {"name": "Acme API v2", "description": "newer"}
    second = await publish(client, tenant, changed)
    assert (second["version"], second["manifest"]["version"]) == (2, 2)
    one = await client.get(f"{API}/acme/versions/1", headers=tenant.headers)
    assert one.json()["manifest"]["name"] == "Acme API"
    latest = (await client.get(f"{API}/acme", headers=tenant.headers)).json()
    assert (latest["name"], latest["latest_version"]) == ("Acme API v2", 2)
    missing = await client.get(f"{API}/acme/versions/3", headers=tenant.headers)
    assert missing.status_code == 404


async def test_a_custom_connector_cannot_take_a_built_ins_id(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    taken = await _save(client, tenant, b'{"id": "webhook", "name": "Mine"}', "application/json")
    assert taken.status_code == 409, taken.text
    assert taken.json()["field"] == "id"


async def test_only_admins_write_connectors(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create()
    agent = await tenants.member(tenant.id, Role.AGENT)
    body = yaml.safe_dump(oauth_manifest("acme"))
    refused = await client.post(
        API, content=body, headers=agent.headers | {"Content-Type": "application/yaml"}
    )
    assert refused.status_code == 403
    await _save(client, tenant, body, "application/yaml")
    assert (await client.post(f"{API}/acme/publish", headers=agent.headers)).status_code == 403


async def test_another_tenants_connector_is_not_found(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owner, other = await tenants.create(), await tenants.create()
    await publish(client, owner, oauth_manifest("private"))
    assert (await client.get(f"{API}/private", headers=other.headers)).status_code == 404
    assert (await client.post(f"{API}/private/publish", headers=other.headers)).status_code == 404
    listed = (await client.get(API, headers=other.headers)).json()
    assert "private" not in {item["id"] for item in listed}
    mine = await _save(client, other, yaml.safe_dump(oauth_manifest("private")), "text/yaml")
    assert mine.status_code == 200  # each tenant has its own ids


async def test_bad_bodies_get_a_clear_4xx(client: httpx.AsyncClient, tenants: Tenants) -> None:
    tenant = await tenants.create()
    cases: list[tuple[bytes | str, str, int, str]] = [
        ("id: shop\nname: x", "text/plain", 415, "unsupported-media-type"),
        ("id: [unclosed", "application/yaml", 400, "malformed-document"),
        ('{"id": "shop",', "application/json", 400, "malformed-json"),
        ('id: shop\nname: "nul\\0here"', "application/yaml", 422, "invalid-input"),
        ('{"id": "shop", "name": "nul\\u0000"}', "application/json", 422, "invalid-input"),
        ("a: &x [1]\nb: *x\nid: shop", "application/yaml", 400, "malformed-document"),
        ("- id: shop", "application/yaml", 422, "invalid-input"),
        ("name: no id", "application/yaml", 422, "invalid-input"),
        ("id: Not A Code", "application/yaml", 422, "invalid-input"),
        (b"id: \xff\xfe", "application/yaml", 400, "malformed-document"),
        ("", "application/yaml", 422, "invalid-input"),
    ]
    for body, media, status, slug in cases:
        answer = await _save(client, tenant, body, media)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["type"] == f"/problems/{slug}", (body, answer.text)
    nul = await _save(client, tenant, 'id: shop\nname: "nul\\0here"', "application/yaml")
    assert nul.json()["errors"][0]["field"] == "name"
    assert (await client.get(f"{API}/shop", headers=tenant.headers)).status_code == 404
    assert (await client.get(f"{API}/nul%00", headers=tenant.headers)).status_code == 422
