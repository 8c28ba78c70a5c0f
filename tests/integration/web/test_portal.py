"""The customer portal over HTTP: a customer signs in by a link, opens a case from a
public template with its form, replies, rates the closed case; sees only their own cases
and never an internal note; the portal's cookie opens nothing else."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from casedesk.worker.search_index import SearchIndexer
from tests.conftest import Tenants
from tests.support.cases import Desk, make_desk
from tests.support.delivery import Settle, delivering_to
from tests.support.web import hidden

# The activities under the pages are tested through the API on every database, and the
# portal's sign-in storage in tests/integration/test_portal_sign_in.py.
pytestmark = pytest.mark.backends("sqlite")

REPAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["device"],
    "properties": {
        "device": {"type": "string", "enum": ["printer", "scanner"], "title": "Device"},
        "copies": {"type": "integer", "minimum": 1, "title": "Copies a day"},
        "urgent": {"type": "boolean"},
    },
}


async def _public_template(desk: Desk, code: str = "repair", *, public: bool = True) -> None:
    made = await desk.http.post(
        "/api/v1/templates",
        json={
            "code": code,
            "name": code.title(),
            "state_machine": "basic",
            "default_queue": "support",
            "form_schema": REPAIR_SCHEMA,
            "public": public,
        },
        headers=desk.headers,
    )
    assert made.status_code == 201, made.text


async def sign_in_customer(http: httpx.AsyncClient, workspace: str, email: str) -> str:
    """Ask for a link, follow it, spend it; the portal's CSRF token of the session."""
    form = await http.get(f"/portal/{workspace}")
    assert form.status_code == 200, form.text
    sent = await http.post(
        f"/portal/{workspace}/sign-in",
        data={"form_token": hidden(form.text, "form_token"), "email": email},
    )
    assert sent.status_code == 200, sent.text
    found = re.search(r'class="portal-link"[^>]*>([^<]+)<', sent.text)
    assert found is not None, "the link is shown in the embedded mode"
    path = found.group(1).removeprefix(str(http.base_url).rstrip("/"))
    page = await http.get(path)
    assert page.status_code == 200
    spent = await http.post(path, data={"form_token": hidden(page.text, "form_token")})
    assert spent.status_code == 303
    assert spent.headers["location"] == f"/portal/{workspace}/cases"
    cases = await http.get(f"/portal/{workspace}/cases")
    assert cases.status_code == 200
    return hidden(cases.text, "csrf_token")


@pytest.fixture
async def desk(client: httpx.AsyncClient, tenants: Tenants, container: Any) -> Desk:
    made = await make_desk(client, await tenants.create(), container)
    await _public_template(made)
    await _public_template(made, "internal", public=False)
    return made


async def _open(
    http: httpx.AsyncClient, workspace: str, csrf: str, **fields: str
) -> httpx.Response:
    data = {"csrf_token": csrf, "template": "repair", "title": "My printer is on fire"}
    return await http.post(f"/portal/{workspace}/cases", data=data | fields)


async def test_a_customer_opens_a_case_replies_and_rates_it(desk: Desk) -> None:
    http, workspace = desk.http, desk.tenant.slug
    csrf = await sign_in_customer(http, workspace, "Ana@Example.com")
    new = await http.get(f"/portal/{workspace}/cases/new")
    assert 'name="form.device"' in new.text
    assert 'name="form.copies"' in new.text
    assert "Internal" not in new.text, "a private template is not offered"
    opened = await _open(
        http,
        workspace,
        csrf,
        description="Smoke everywhere",
        **{"form.device": "printer", "form.copies": "12", "form.urgent": "1"},
    )
    assert opened.status_code == 303, opened.text
    number = int(opened.headers["location"].rsplit("/", 1)[1])
    listed = await http.get(
        "/api/v1/cases", params={"customer": "ana@example.com"}, headers=desk.headers
    )
    (case,) = listed.json()["items"]
    assert case["number"] == number
    assert case["channel"] == "portal"
    shown = (await http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()
    assert shown["form"] == {"device": "printer", "copies": 12, "urgent": True}
    assert shown["customer"]["email"] == "ana@example.com"

    note = await http.post(
        f"/api/v1/cases/{case['id']}/comments",
        json={"body": "secret internal remark", "public": False},
        headers=desk.headers,
    )
    assert note.status_code == 201
    agent = await http.post(
        f"/api/v1/cases/{case['id']}/comments",
        json={"body": "Please unplug it", "public": True},
        headers=desk.headers,
    )
    assert agent.status_code == 201
    page = await http.get(f"/portal/{workspace}/cases/{number}")
    assert "Please unplug it" in page.text
    assert "Smoke everywhere" in page.text
    assert "secret internal remark" not in page.text

    replied = await http.post(
        f"/portal/{workspace}/cases/{number}/comments",
        data={"csrf_token": csrf, "body": "Unplugged, still smoking"},
    )
    assert replied.status_code == 303
    comments = (await http.get(f"/api/v1/cases/{case['id']}/comments", headers=desk.headers)).json()
    mine = [c for c in comments["items"] if c["body"] == "Unplugged, still smoking"]
    assert mine
    assert mine[0]["author_type"] == "customer"
    assert mine[0]["public"] is True

    early = await http.post(
        f"/portal/{workspace}/cases/{number}/rating", data={"csrf_token": csrf, "score": "4"}
    )
    assert early.status_code == 409, "an open case is not rated"
    await desk.act(case["id"], "solve")
    closed = await http.get(f"/portal/{workspace}/cases/{number}")
    assert 'name="score"' in closed.text
    assert 'name="body"' not in closed.text
    rated = await http.post(
        f"/portal/{workspace}/cases/{number}/rating",
        data={"csrf_token": csrf, "score": "5", "comment": "Fast!"},
    )
    assert rated.status_code == 303
    rating = (await http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)).json()["rating"]
    assert rating["score"] == 5
    assert rating["comment"] == "Fast!"
    again = await http.post(
        f"/portal/{workspace}/cases/{number}/rating", data={"csrf_token": csrf, "score": "1"}
    )
    assert again.status_code == 409
    late = await http.post(
        f"/portal/{workspace}/cases/{number}/comments", data={"csrf_token": csrf, "body": "hi"}
    )
    assert late.status_code == 422
    assert "closed" in late.text


async def test_bad_input_is_named_and_opens_nothing(desk: Desk) -> None:
    http, workspace = desk.http, desk.tenant.slug
    csrf = await sign_in_customer(http, workspace, "bo@example.com")
    for fields, named in (
        ({"form.device": "printer", "form.copies": "many"}, "not a number"),
        ({"form.device": "printer", "form.copies": "9" * 30}, "too large"),
        ({"form.copies": "2"}, "device"),
        ({"form.device": "toaster"}, "device"),
        ({"form.device": "printer", "title": ""}, "title"),
        ({"form.device": "printer", "template": "internal"}, "choose what the case is about"),
    ):
        refused = await _open(http, workspace, csrf, **fields)
        assert refused.status_code == 422, (fields, refused.text)
        assert named in refused.text, (fields, refused.text)
    listed = await http.get(
        "/api/v1/cases", params={"customer": "bo@example.com"}, headers=desk.headers
    )
    assert listed.json()["items"] == []
    forged = await _open(http, workspace, "not-the-token", **{"form.device": "printer"})
    assert forged.status_code == 403


async def test_a_customer_sees_only_their_own_cases(
    desk: Desk, client: httpx.AsyncClient, tenants: Tenants, container: Any
) -> None:
    workspace = desk.tenant.slug
    theirs = await desk.new_case(customer={"email": "someone.else@example.com"})
    csrf = await sign_in_customer(client, workspace, "cy@example.com")
    mine = await _open(client, workspace, csrf, **{"form.device": "scanner"})
    number = int(mine.headers["location"].rsplit("/", 1)[1])
    listed = await client.get(f"/portal/{workspace}/cases")
    assert f"/cases/{number}" in listed.text
    assert f'/cases/{theirs["number"]}"' not in listed.text
    hidden_case = await client.get(f"/portal/{workspace}/cases/{theirs['number']}")
    assert hidden_case.status_code == 404
    reply = await client.post(
        f"/portal/{workspace}/cases/{theirs['number']}/comments",
        data={"csrf_token": csrf, "body": "let me in"},
    )
    assert reply.status_code == 404
    other = await make_desk(client, await tenants.create(), container)
    await _public_template(other)
    elsewhere = await client.get(f"/portal/{other.tenant.slug}/cases")
    assert elsewhere.status_code == 303, "a session of one portal is none in another"
    assert (await client.get("/app")).headers["location"].startswith("/sign-in")
    assert (await client.get("/portal/no-such-desk")).status_code == 404


async def test_a_link_works_once_and_not_on_another_portal(
    desk: Desk, client: httpx.AsyncClient, tenants: Tenants, container: Any
) -> None:
    workspace = desk.tenant.slug
    form = await client.get(f"/portal/{workspace}")
    sent = await client.post(
        f"/portal/{workspace}/sign-in",
        data={"form_token": hidden(form.text, "form_token"), "email": "di@example.com"},
    )
    found = re.search(r"/portal/[^/]+/link/([A-Za-z0-9_-]+)", sent.text)
    assert found is not None
    token = found.group(1)
    too_soon = await client.post(
        f"/portal/{workspace}/sign-in",
        data={"form_token": hidden(form.text, "form_token"), "email": "di@example.com"},
    )
    assert too_soon.status_code == 429
    assert too_soon.headers["retry-after"]
    other = await tenants.create()
    wrong = await client.post(
        f"/portal/{other.slug}/link/{token}", data={"form_token": hidden(form.text, "form_token")}
    )
    assert wrong.status_code == 404
    used = await client.post(
        f"/portal/{workspace}/link/{token}", data={"form_token": hidden(form.text, "form_token")}
    )
    assert used.status_code == 303
    again = await client.post(
        f"/portal/{workspace}/link/{token}", data={"form_token": hidden(form.text, "form_token")}
    )
    assert again.status_code == 404
    assert "already used" in again.text
    bad = await client.post(
        f"/portal/{workspace}/sign-in",
        data={"form_token": hidden(form.text, "form_token"), "email": "not an address"},
    )
    assert bad.status_code == 422
    page = await client.get(f"/portal/{workspace}/cases")
    out = await client.post(
        f"/portal/{workspace}/sign-out", data={"csrf_token": hidden(page.text, "csrf_token")}
    )
    assert out.status_code == 303
    assert (await client.get(f"/portal/{workspace}/cases")).status_code == 303


async def test_a_customer_searches_their_own_cases_and_never_the_internal_notes(
    desk: Desk, client: httpx.AsyncClient, container: Any
) -> None:
    async with delivering_to(container, SearchIndexer(container.database).group()) as settle:
        await _customer_searches(desk, client, settle)


async def _customer_searches(desk: Desk, client: httpx.AsyncClient, settle: Settle) -> None:
    workspace = desk.tenant.slug
    mine = await desk.new_case(title="Scanner jams 扫描仪", customer={"email": "cy@example.com"})
    await desk.new_case(title="Scanner too 扫描仪", customer={"email": "other@example.com"})
    for body, public in (("try the blue tray", True), ("secret 机密 remark", False)):
        made = await desk.http.post(
            f"/api/v1/cases/{mine['id']}/comments",
            json={"body": body, "public": public},
            headers=desk.headers,
        )
        assert made.status_code == 201, made.text
    await settle()
    await sign_in_customer(client, workspace, "cy@example.com")

    async def shown(q: str) -> httpx.Response:
        return await client.get(f"/portal/{workspace}/cases", params={"q": q})

    found = await shown("扫描仪")
    assert found.status_code == 200
    assert f'/cases/{mine["number"]}"' in found.text
    listed = re.findall(rf'href="/portal/{workspace}/cases/(\d+)"', found.text)
    assert listed == [str(mine["number"])], "only their own"
    tray = await shown("tray")
    assert "the blue <mark>tray</mark>" in tray.text
    for secret in ("机密", "secret", '"secret 机密"'):
        assert "None of your cases matches this search." in (await shown(secret)).text
    assert f'/cases/{mine["number"]}"' in (await shown("scanner -secret")).text
    refused = await shown("state:open")
    assert refused.status_code == 422
    assert "search by words, phrases and case numbers here" in refused.text
