"""The integration screens over HTTP: connectors, connections made through the form (and
read back over the API, secrets never shown), OAuth2 Connect through a real local
authorization server ending on the connection's page, workflows, and an execution's steps.
Not for viewers; another tenant's ids are 404; bad input is a 422 naming the field."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from casedesk.bootstrap import Container
from casedesk.domain.identity.roles import Role
from casedesk.traces.documents import document
from tests.conftest import TenantHandle, Tenants
from tests.support.cases import Desk
from tests.support.connections import REDIRECT_URI, oauth_manifest, publish
from tests.support.http_server import Reply, local_http_server
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer, oauth_server
from tests.support.web import hidden, signed_in
from tests.support.workflows import (
    OPEN_CASE,
    delivery,
    fire_items,
    published,
    quick_runner,
    run_due,
    webhook_workflow,
)

# The pages run the activities the API runs, tested there on every database.
pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
async def admin(client: httpx.AsyncClient, tenants: Tenants) -> tuple[TenantHandle, str]:
    tenant = await tenants.create()
    await signed_in(client, tenant, tenant.admin_id)
    page = await client.get("/app/admin/connectors")
    return tenant, hidden(page.text, "csrf_token")


@pytest.fixture
async def provider() -> AsyncIterator[OAuthServer]:
    async with oauth_server(REDIRECT_URI) as running:
        yield running


async def test_every_integration_screen_opens(
    client: httpx.AsyncClient, admin: tuple[TenantHandle, str]
) -> None:
    for path, heading in (
        ("/app/admin/connectors", "Generic webhook"),
        ("/app/admin/connectors/gmail", "new_mail_polled"),
        ("/app/admin/connections", "New connection"),
        ("/app/admin/connections?connector=rest", "Create connection"),
        ("/app/admin/workflows", "New workflow"),
        ("/app/admin/executions", "No executions."),
    ):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert heading in page.text, path
        assert 'aria-current="page"' in page.text
    gmail = (await client.get("/app/admin/connectors/gmail")).text
    assert "OAuth2 (authorization code)" in gmail
    assert "polling" in gmail
    assert "instant" in gmail
    assert (await client.get("/app/admin/connectors/nothing")).status_code == 404
    assert (await client.get("/app/admin/workflows/nothing")).status_code == 404
    assert (await client.get("/app/admin/connections/not-an-id")).status_code == 404


async def test_a_connection_made_through_the_form_is_what_the_api_reads(
    client: httpx.AsyncClient, admin: tuple[TenantHandle, str]
) -> None:
    tenant, csrf = admin
    form = {
        "csrf_token": csrf,
        "connector": "rest",
        "name": "Orders API",
        "settings.base_url": "https://orders.example.com",
        "secrets.token": "tok-1234567890-abcd",
    }
    unnamed = await client.post("/app/admin/connections", data=form | {"name": " "})
    assert unnamed.status_code == 422
    assert "name:" in unnamed.text
    made = await client.post("/app/admin/connections", data=form)
    assert made.status_code == 303, made.text
    page = await client.get(made.headers["location"])
    assert "The connection is made." in page.text
    assert "tok-1234567890-abcd" not in page.text
    assert "****abcd" in page.text
    listed = await client.get("/api/v1/connections", headers=tenant.headers)
    [connection] = listed.json()["items"]
    assert (connection["name"], connection["connector"]) == ("Orders API", "rest")
    assert connection["settings"] == {"base_url": "https://orders.example.com"}
    assert connection["secrets"]["token"] == {"set": True, "mask": "****abcd"}

    path = f"/app/admin/connections/{connection['id']}"
    saved = await client.post(
        path, data={"csrf_token": csrf, "name": "Orders", "settings.base_url": "https://o.example"}
    )
    assert saved.status_code == 303, saved.text
    read = await client.get(f"/api/v1/connections/{connection['id']}", headers=tenant.headers)
    assert (read.json()["name"], read.json()["settings"]["base_url"]) == (
        "Orders",
        "https://o.example",
    )
    assert read.json()["secrets"]["token"]["set"] is True  # a blank secret is kept
    deleted = await client.post(f"{path}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert (await client.get(path)).status_code == 404


async def test_oauth_connect_goes_to_the_provider_and_comes_back_connected(
    client: httpx.AsyncClient, admin: tuple[TenantHandle, str], provider: OAuthServer
) -> None:
    tenant, csrf = admin
    await publish(client, tenant, oauth_manifest())
    made = await client.post(
        "/app/admin/connections",
        data={
            "csrf_token": csrf,
            "connector": "acme",
            "name": "Acme",
            "settings.base_url": provider.url,
            "settings.client_id": CLIENT_ID,
            "secrets.client_secret": CLIENT_SECRET,
        },
    )
    assert made.status_code == 303, made.text
    path = made.headers["location"].split("?")[0]
    before = await client.get(path)
    assert "not connected" in before.text
    assert "needs authorization" in before.text
    refused = await client.post(f"{path}/connect", data={})
    assert refused.status_code == 403  # no CSRF token

    away = await client.post(f"{path}/connect", data={"csrf_token": csrf})
    assert away.status_code == 303
    assert away.headers["location"].startswith(f"{provider.url}/oauth/authorize?")
    async with httpx.AsyncClient() as browser:  # the provider's side of the browser
        consent = await browser.get(away.headers["location"])
    assert consent.status_code == 302, consent.text
    back = consent.headers["location"]
    assert back.startswith(REDIRECT_URI)
    done = await client.get(back)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{path}?done=connected"
    page = await client.get(done.headers["location"])
    assert "The provider granted access: the connection is connected." in page.text
    connection_id = path.rsplit("/", 1)[1]
    read = await client.get(f"/api/v1/connections/{connection_id}", headers=tenant.headers)
    assert (read.json()["status"], read.json()["authorized"]) == ("active", True)
    # The mark is spent: the same callback again answers as the API does.
    again = await client.get(back)
    assert again.status_code == 400
    assert "used already" in again.json()["detail"]

    provider.deny = True  # the admin says no on the provider's consent page
    away = await client.post(f"{path}/connect", data={"csrf_token": csrf})
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(away.headers["location"])
    done = await client.get(consent.headers["location"])
    assert done.headers["location"] == f"{path}?done=refused"
    page = await client.get(done.headers["location"])
    assert "The authorization did not complete; connect again." in page.text


async def test_a_failed_execution_shows_its_steps_and_runs_again(
    client: httpx.AsyncClient, desk: Desk, container: Container
) -> None:
    await signed_in(client, desk.tenant, desk.tenant.admin_id)
    broken = OPEN_CASE | {"title": "{{ trigger.body.missing.deeper }}"}
    flow = await published(desk, webhook_workflow("broken", [broken]))
    [queued] = await fire_items(
        container, desk.tenant.id, flow["subscription"]["id"], delivery("b-1")
    )
    await run_due(quick_runner(container), container)

    listed = await client.get("/app/admin/executions", params={"workflow": "broken"})
    assert f"/app/admin/executions/{queued.id}" in listed.text
    none = await client.get("/app/admin/executions", params={"status": "succeeded"})
    assert f"/app/admin/executions/{queued.id}" not in none.text
    bad = await client.get("/app/admin/executions", params={"status": "exploded"})
    assert bad.status_code == 422
    assert "status:" in bad.text
    lost = await client.get("/app/admin/executions", params={"cursor": "not-a-cursor"})
    assert lost.status_code == 422

    page = await client.get(f"/app/admin/executions/{queued.id}")
    assert page.status_code == 200
    text = page.text
    assert '1. <span translate="no">open</span>' in text
    assert "trigger.body.missing.deeper" in text  # the step's error
    assert "Printer on fire" in text  # the trigger item and the step's input
    assert "took" in text
    assert f'href="/app/admin/traces?execution={queued.id}"' in text
    csrf = hidden(text, "csrf_token")
    retried = await client.post(
        f"/app/admin/executions/{queued.id}/retry", data={"csrf_token": csrf}
    )
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/app/admin/executions/{queued.id}?done=retried"
    read = await client.get(f"/api/v1/executions/{queued.id}", headers=desk.headers)
    assert read.json()["status"] == "queued"

    workflow = await client.get("/app/admin/workflows/broken")
    assert "version 1" in workflow.text
    assert "create_case" in workflow.text
    off = await client.post("/app/admin/workflows/broken/disable", data={"csrf_token": csrf})
    assert off.status_code == 303
    read_flow = await client.get("/api/v1/workflows/broken", headers=desk.headers)
    assert read_flow.json()["enabled"] is False


async def test_a_workflow_saved_from_the_form_and_its_mistakes(
    client: httpx.AsyncClient, admin: tuple[TenantHandle, str]
) -> None:
    tenant, csrf = admin
    definition = {
        "name": "Inbound",
        "trigger": {"connector": "webhook", "trigger": "delivery"},
        "steps": [dict(OPEN_CASE)],
    }
    not_json = await client.post(
        "/app/admin/workflows", data={"csrf_token": csrf, "code": "inbound", "definition": "{"}
    )
    assert not_json.status_code == 422
    assert "definition: not JSON" in not_json.text
    no_steps = await client.post(
        "/app/admin/workflows",
        data={
            "csrf_token": csrf,
            "code": "inbound",
            "definition": json.dumps(definition | {"steps": []}),
        },
    )
    assert no_steps.status_code == 422
    assert "steps:" in no_steps.text
    bad_code = await client.post(
        "/app/admin/workflows",
        data={"csrf_token": csrf, "code": "Not A Code", "definition": json.dumps(definition)},
    )
    assert bad_code.status_code == 422
    assert "code:" in bad_code.text
    assert (await client.get("/api/v1/workflows", headers=tenant.headers)).json() == []
    saved = await client.post(
        "/app/admin/workflows",
        data={"csrf_token": csrf, "code": "inbound", "definition": json.dumps(definition)},
    )
    assert saved.status_code == 303, saved.text
    page = await client.get(saved.headers["location"])
    assert "The draft is saved." in page.text
    assert "no template" in page.text  # what publishing would refuse
    refused = await client.post("/app/admin/workflows/inbound/publish", data={"csrf_token": csrf})
    assert refused.status_code == 422
    read = await client.get("/api/v1/workflows/inbound", headers=tenant.headers)
    assert read.json()["latest_version"] == 0


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
async def test_the_integration_screens_are_for_admins_only(
    client: httpx.AsyncClient, tenants: Tenants, role: Role
) -> None:
    tenant = await tenants.create()
    member = await tenants.member(tenant.id, role)
    await signed_in(client, tenant, member.id)
    for path in (
        "/app/admin/connectors",
        "/app/admin/connectors/webhook",
        "/app/admin/connections",
        "/app/admin/workflows",
        "/app/admin/executions",
        f"/app/admin/executions/{uuid.uuid4()}",
    ):
        assert (await client.get(path)).status_code == 403, path
    csrf = hidden((await client.get("/app/cases?view=open")).text, "csrf_token")
    posted = await client.post(
        "/app/admin/connections",
        data={"csrf_token": csrf, "connector": "rest", "name": "Sneaky"},
    )
    assert posted.status_code == 403
    listed = await client.get("/api/v1/connections", headers=tenant.headers)
    assert listed.json()["items"] == []


async def test_another_tenants_objects_are_not_found(
    client: httpx.AsyncClient, admin: tuple[TenantHandle, str], desk: Desk, container: Container
) -> None:
    _, csrf = admin
    other = desk.tenant
    flow = await published(desk, webhook_workflow("theirs", [OPEN_CASE]))
    [queued] = await fire_items(container, other.id, flow["subscription"]["id"], delivery("o-1"))
    made = await client.post(
        "/api/v1/connections",
        json={"name": "Theirs", "connector": "rest", "settings": {"base_url": "https://x.test"}},
        headers=other.headers,
    )
    assert made.status_code == 201, made.text
    theirs = made.json()["id"]
    assert (await client.get(f"/app/admin/connections/{theirs}")).status_code == 404
    for action in ("", "/delete", "/connect", "/test"):
        posted = await client.post(
            f"/app/admin/connections/{theirs}{action}", data={"csrf_token": csrf}
        )
        assert posted.status_code == 404, action
    assert (await client.get(f"/app/admin/executions/{queued.id}")).status_code == 404
    for again in ("retry", "replay"):
        posted = await client.post(
            f"/app/admin/executions/{queued.id}/{again}", data={"csrf_token": csrf}
        )
        assert posted.status_code == 404, again
    assert (await client.get("/app/admin/workflows/theirs")).status_code == 404
    assert (
        f"/app/admin/executions/{queued.id}" not in (await client.get("/app/admin/executions")).text
    )
    still = await client.get(f"/api/v1/connections/{theirs}", headers=other.headers)
    assert still.json()["name"] == "Theirs"


async def test_a_failed_call_links_the_trace_of_that_call(
    client: httpx.AsyncClient, desk: Desk, container: Container
) -> None:
    await signed_in(client, desk.tenant, desk.tenant.admin_id)
    async with local_http_server() as server:
        server.script("/strict", Reply.json({"error": "no such thing"}, status=404))
        call = {"name": "call", "kind": "http_request", "request": {"path": f"{server.url}/strict"}}
        flow = await published(desk, webhook_workflow("strict", [call]))
        [queued] = await fire_items(
            container, desk.tenant.id, flow["subscription"]["id"], delivery("4-1")
        )
        await run_due(quick_runner(container, retries=0), container)
    await container.hot.put_many([document(r) for r in container.traces.drain(100_000)])
    traces = await client.get(
        "/api/v1/traces", params={"execution_id": str(queued.id)}, headers=desk.headers
    )
    [record] = traces.json()["items"]
    page = await client.get(f"/app/admin/executions/{queued.id}")
    assert "404" in page.text
    assert f'href="/app/admin/traces/{record["id"]}"' in page.text
    # The links open the trace viewer's pages.
    assert (await client.get(f"/app/admin/traces/{record['id']}")).status_code == 200
    listed = await client.get("/app/admin/traces", params={"execution": str(queued.id)})
    assert listed.status_code == 200
