"""People signing in from a browser: one-time links set passwords, sessions are cookies
with a CSRF token, failures are throttled, and signing out ends one session or all.

Through the app over HTTP, on SQLite, PostgreSQL and MariaDB, as a browser sends its forms.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from casedesk.bootstrap import Container
from casedesk.domain.identity.passwords import FREE_FAILURES
from casedesk.domain.identity.roles import Role
from casedesk.kit.clock import utcnow
from casedesk.store.models import WebSession
from casedesk.store.tenancy import ALL_TENANTS
from tests.conftest import TenantHandle, Tenants
from tests.support.web import PASSWORD, email_of, hidden, password_link, set_password
from tests.support.web import sign_in as _sign_in


@pytest.fixture
async def invited(client: httpx.AsyncClient, tenants: Tenants) -> tuple[TenantHandle, str]:
    """A tenant whose admin set a password through an invitation; the admin's address."""
    tenant = await tenants.create()
    response = await set_password(client, await password_link(client, tenant, tenant.admin_id))
    assert response.status_code == 303
    assert response.headers["location"] == f"/sign-in?workspace={tenant.slug}&done=password"
    client.cookies.clear()
    return tenant, await email_of(client, tenant, tenant.admin_id)


async def test_an_invitation_sets_a_password_once_and_the_person_signs_in(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant = await tenants.create()
    before = await client.get(f"/api/v1/users/{tenant.admin_id}", headers=tenant.headers)
    assert before.json()["has_password"] is False
    link = await password_link(client, tenant, tenant.admin_id)
    assert (await set_password(client, link)).status_code == 303
    again = await client.get(link)
    assert again.status_code == 404
    assert "already used" in again.text
    email = await email_of(client, tenant, tenant.admin_id)
    client.cookies.clear()

    signed = await _sign_in(client, tenant.slug, email.upper())
    assert signed.status_code == 303
    assert signed.headers["location"] == "/app"
    cookie = signed.headers.get_list("set-cookie")
    session = next(c for c in cookie if c.startswith("casedesk_session="))
    assert "HttpOnly" in session
    assert "SameSite=lax" in session or "samesite=lax" in session.lower()
    page = await client.get("/app/cases")
    assert page.status_code == 200
    assert tenant.slug in page.text
    after = await client.get(f"/api/v1/users/{tenant.admin_id}", headers=tenant.headers)
    assert after.json()["has_password"] is True


async def test_a_wrong_password_an_unknown_address_and_a_wrong_workspace_read_the_same(
    client: httpx.AsyncClient, invited: tuple[TenantHandle, str]
) -> None:
    tenant, email = invited
    answers = [
        await _sign_in(client, tenant.slug, email, "not the password"),
        await _sign_in(client, tenant.slug, "nobody@example.com"),
        await _sign_in(client, "no-such-workspace", email),
    ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({a.text.replace(email, "").replace("nobody@example.com", "") for a in answers}) <= 2
    for answer in answers:
        assert "The workspace, e-mail address or password is wrong." in answer.text
        assert "casedesk_session=" not in answer.headers.get("set-cookie", "")
    assert (await client.get("/app/cases")).status_code == 303


async def test_failed_sign_ins_in_a_row_make_the_account_wait(
    client: httpx.AsyncClient, invited: tuple[TenantHandle, str]
) -> None:
    tenant, email = invited
    for _ in range(FREE_FAILURES):
        assert (await _sign_in(client, tenant.slug, email, "wrong password")).status_code == 401
    blocked = await _sign_in(client, tenant.slug, email)  # the right password, too soon
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in blocked.text


async def test_a_form_without_its_token_is_refused(
    client: httpx.AsyncClient, invited: tuple[TenantHandle, str]
) -> None:
    tenant, email = invited
    forged = await client.post(
        "/sign-in", data={"workspace": tenant.slug, "email": email, "password": PASSWORD}
    )
    assert forged.status_code == 403
    assert (await _sign_in(client, tenant.slug, email)).status_code == 303
    signed_out = await client.post("/sign-out", data={"csrf_token": "guessed"})
    assert signed_out.status_code == 403
    assert (await client.get("/app/cases")).status_code == 200  # still signed in


async def test_signing_out_ends_the_session_and_everywhere_ends_all(
    client: httpx.AsyncClient, app: object, invited: tuple[TenantHandle, str]
) -> None:
    tenant, email = invited
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://casedesk.test") as other:
        assert (await _sign_in(client, tenant.slug, email)).status_code == 303
        assert (await _sign_in(other, tenant.slug, email)).status_code == 303
        page = await client.get("/app/cases")
        out = await client.post("/sign-out", data={"csrf_token": hidden(page.text, "csrf_token")})
        assert out.status_code == 303
        assert (await client.get("/app/cases")).status_code == 303
        assert (await other.get("/app/cases")).status_code == 200

        assert (await _sign_in(client, tenant.slug, email)).status_code == 303
        page = await other.get("/app/cases")
        everywhere = await other.post(
            "/sign-out",
            data={"csrf_token": hidden(page.text, "csrf_token"), "everywhere": "1"},
        )
        assert everywhere.status_code == 303
        assert (await other.get("/app/cases")).status_code == 303
        assert (await client.get("/app/cases")).status_code == 303


async def test_a_reset_link_signs_out_every_browser_and_the_old_password_stops(
    client: httpx.AsyncClient, invited: tuple[TenantHandle, str]
) -> None:
    tenant, email = invited
    assert (await _sign_in(client, tenant.slug, email)).status_code == 303
    made = await client.post(
        f"/api/v1/users/{tenant.admin_id}/password-link", json={}, headers=tenant.headers
    )
    assert made.json()["purpose"] == "reset"
    link = made.json()["url"].removeprefix("http://casedesk.test")
    short = await set_password(client, link, "short")
    assert short.status_code == 422
    assert "at least 10 characters" in short.text
    assert (await set_password(client, link, "a brand new password")).status_code == 303
    assert (await client.get("/app/cases")).status_code == 303
    assert (await _sign_in(client, tenant.slug, email)).status_code == 401
    assert (await _sign_in(client, tenant.slug, email, "a brand new password")).status_code == 303


async def test_an_idle_session_ends_and_a_deactivated_user_is_signed_out(
    client: httpx.AsyncClient, container: Container, invited: tuple[TenantHandle, str]
) -> None:
    tenant, email = invited
    assert (await _sign_in(client, tenant.slug, email)).status_code == 303
    async with container.unit_of_work() as uow:
        await uow.begin_write()
        await uow.session.execute(
            update(WebSession)
            .where(WebSession.user_id == tenant.admin_id)
            .values(last_seen_at=utcnow() - timedelta(hours=13))
            .execution_options(**{ALL_TENANTS: True})
        )
        await uow.commit()
    assert (await client.get("/app/cases")).status_code == 303

    agent = await Tenants(container).member(tenant.id, Role.AGENT)
    link = await password_link(client, tenant, agent.id)
    assert (await set_password(client, link)).status_code == 303
    agent_email = await email_of(client, tenant, agent.id)
    assert (await _sign_in(client, tenant.slug, agent_email)).status_code == 303
    assert (await client.get("/app/cases")).status_code == 200
    deactivated = await client.patch(
        f"/api/v1/users/{agent.id}", json={"active": False}, headers=tenant.headers
    )
    assert deactivated.status_code == 200
    assert (await client.get("/app/cases")).status_code == 303


async def test_only_an_admin_makes_password_links_and_never_for_another_tenant(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tenant, other = await tenants.create(), await tenants.create()
    agent = await tenants.member(tenant.id, Role.AGENT)
    by_agent = await client.post(
        f"/api/v1/users/{tenant.admin_id}/password-link", json={}, headers=agent.headers
    )
    assert by_agent.status_code == 403
    across = await client.post(
        f"/api/v1/users/{tenant.admin_id}/password-link", json={}, headers=other.headers
    )
    assert across.status_code == 404
    bad = await client.post(
        f"/api/v1/users/{tenant.admin_id}/password-link",
        json={"purpose": "forever"},
        headers=tenant.headers,
    )
    assert bad.status_code == 422


async def test_a_signed_in_page_goes_back_where_it_was_asked_for_and_nowhere_else(
    client: httpx.AsyncClient, invited: tuple[TenantHandle, str]
) -> None:
    asked = await client.get("/app?view=mine")
    assert asked.status_code == 303
    assert asked.headers["location"] == "/sign-in?next=/app%3Fview%3Dmine"
    form = await client.get("/sign-in?next=//evil.example/x")
    assert hidden(form.text, "next") == "/app"


async def test_the_screens_speak_chinese_to_a_chinese_browser(
    client: httpx.AsyncClient, invited: tuple[TenantHandle, str]
) -> None:
    chinese = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    form = await client.get("/sign-in", headers=chinese)
    assert form.headers["content-language"] == "zh-Hans"
    assert '<html lang="zh-Hans">' in form.text
    assert "登录 casedesk" in form.text
    assert "Sign in" not in form.text
    english = await client.get("/sign-in", headers={"Accept-Language": "en-GB"})
    assert "Sign in to casedesk" in english.text


async def test_a_person_chooses_their_language_and_time_zone(
    client: httpx.AsyncClient, invited: tuple[TenantHandle, str]
) -> None:
    tenant, email = invited
    assert (await _sign_in(client, tenant.slug, email)).status_code == 303
    english = {"Accept-Language": "en-US"}
    page = await client.get("/app/me", headers=english)
    csrf = hidden(page.text, "csrf_token")
    bad = await client.post(
        "/app/me", data={"csrf_token": csrf, "locale": "", "time_zone": "Mars/Olympus"}
    )
    assert bad.status_code == 422
    assert "not a time zone" in bad.text
    wrong = await client.post("/app/me", data={"csrf_token": csrf, "locale": "fr"})
    assert wrong.status_code == 422
    saved = await client.post(
        "/app/me", data={"csrf_token": csrf, "locale": "zh-Hans", "time_zone": "Asia/Shanghai"}
    )
    assert saved.status_code == 303
    chinese = await client.get("/app/cases?view=open", headers=english)
    assert chinese.headers["content-language"] == "zh-Hans"
    assert "全部未结工单" in chinese.text
    back = await client.post(
        "/app/me",
        data={"csrf_token": csrf, "locale": "", "time_zone": ""},
        headers=english,
    )
    assert back.status_code == 303
    assert (await client.get("/app/cases", headers=english)).headers["content-language"] == "en"
