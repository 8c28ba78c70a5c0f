"""A tenant's own notification templates over HTTP and in the store, on every database:
saved after a check, read back, listed as custom, reset to the built-in one; never seen by
another tenant; a broken or too busy draft refused with a 422 naming its field; only admins;
``template_for`` finds the tenant's template or none."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.exc import IntegrityError

from casedesk.activities.notification_templates import template_for
from casedesk.domain import notifications
from casedesk.domain.identity.roles import Role
from casedesk.domain.notifications import MailTemplate
from casedesk.store.models import NotificationTemplate
from tests.conftest import Tenants
from tests.support.cases import Desk

URL = "/api/v1/notifications"
DRAFT = {
    "subject": "Welcome to {{ desk.name }}",
    "text": "Hello {{ user.name }},\nsign in at {{ link }} within {{ hours }} hours.",
    "html": "<p>Hello {{ user.name }}, <a href='{{ link }}'>sign in</a></p>",
}
PLAIN = {
    "subject": "News from {{ desk.name }}",
    "text": "Hello from {{ desk.name }}.",
    "html": None,
}
"""A draft every kind renders: each has the desk."""
NESTED = "{% for a in range(1000) %}{% for b in range(1000) %}.{% endfor %}{% endfor %}"


async def _custom(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, dict[str, bool]]:
    listed = await http.get(URL, headers=headers)
    assert listed.status_code == 200, listed.text
    body: list[dict[str, Any]] = listed.json()
    return {k["kind"]: {t["language"]: t["custom"] for t in k["templates"]} for k in body}


async def test_save_read_back_list_and_reset(desk: Desk) -> None:
    http, headers = desk.http, desk.headers
    builtin = await http.get(f"{URL}/invitation/en", headers=headers)
    assert builtin.status_code == 200, builtin.text
    assert builtin.json()["custom"] is False
    assert builtin.json()["subject"] == notifications.builtin("invitation", "en").subject
    assert (await _custom(http, headers))["invitation"] == {"en": False, "zh-Hans": False}

    saved = await http.put(f"{URL}/invitation/en", json=DRAFT, headers=headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["custom"] is True
    assert saved.json()["updated_by"] == str(desk.tenant.admin_id)
    read = (await http.get(f"{URL}/invitation/en", headers=headers)).json()
    assert {key: read[key] for key in DRAFT} == DRAFT
    assert read["custom"] is True
    assert read["updated_at"] is not None
    custom = await _custom(http, headers)
    assert custom["invitation"] == {"en": True, "zh-Hans": False}
    assert not any(any(langs.values()) for kind, langs in custom.items() if kind != "invitation")

    changed = await http.put(
        f"{URL}/invitation/en", json=DRAFT | {"subject": "Join {{ desk.name }}"}, headers=headers
    )
    assert changed.status_code == 200
    assert (await http.get(f"{URL}/invitation/en", headers=headers)).json()[
        "subject"
    ] == "Join {{ desk.name }}"

    preview = await http.get(f"{URL}/invitation/preview?language=en", headers=headers)
    assert preview.json()["subject"] == "Join Acme Support"
    assert "<a href='https://desk.example.com/sign-in/link/abc'>" in preview.json()["html"]
    chinese = await http.get(f"{URL}/invitation/preview?language=zh-Hans", headers=headers)
    assert chinese.json()["subject"] != "Join Acme Support"  # no Chinese template of its own

    reset = await http.delete(f"{URL}/invitation/en", headers=headers)
    assert reset.status_code == 204
    again = await http.delete(f"{URL}/invitation/en", headers=headers)
    assert again.status_code == 204
    back = (await http.get(f"{URL}/invitation/en", headers=headers)).json()
    assert back["custom"] is False
    assert back["subject"] == notifications.builtin("invitation", "en").subject
    assert (await _custom(http, headers))["invitation"] == {"en": False, "zh-Hans": False}
    preview = await http.get(f"{URL}/invitation/preview?language=en", headers=headers)
    assert preview.json()["subject"] != "Join Acme Support"


async def test_another_tenant_sees_the_built_in_template(desk: Desk, tenants: Tenants) -> None:
    saved = await desk.http.put(f"{URL}/case_solved/zh-Hans", json=PLAIN, headers=desk.headers)
    assert saved.status_code == 200, saved.text
    other = await tenants.create()
    read = (await desk.http.get(f"{URL}/case_solved/zh-Hans", headers=other.headers)).json()
    assert read["custom"] is False
    assert read["subject"] == notifications.builtin("case_solved", "zh-Hans").subject
    assert (await _custom(desk.http, other.headers))["case_solved"]["zh-Hans"] is False
    preview = await desk.http.get(
        f"{URL}/case_solved/preview?language=zh-Hans", headers=other.headers
    )
    assert "News from" not in preview.json()["subject"]
    # Resetting the other tenant's leaves the first tenant's template alone.
    assert (
        await desk.http.delete(f"{URL}/case_solved/zh-Hans", headers=other.headers)
    ).status_code == 204
    mine = (await desk.http.get(f"{URL}/case_solved/zh-Hans", headers=desk.headers)).json()
    assert mine["custom"] is True


async def test_a_broken_draft_is_a_422_naming_its_field_and_line(desk: Desk) -> None:
    url = f"{URL}/agent_reply/en"
    broken = await desk.http.put(
        url, json={"subject": "s", "text": "Hi\n{{ customer.name }\n"}, headers=desk.headers
    )
    assert broken.status_code == 422
    assert "text, line 2" in broken.json()["detail"]
    unknown = await desk.http.put(
        url, json={"subject": "{{ nobody.name }}", "text": "t"}, headers=desk.headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"].startswith("subject:")
    html = await desk.http.put(
        url, json={"subject": "s", "text": "t", "html": "{% if %}"}, headers=desk.headers
    )
    assert html.status_code == 422
    assert "html, line 1" in html.json()["detail"]
    assert (await desk.http.get(url, headers=desk.headers)).json()["custom"] is False


async def test_a_draft_that_does_too_much_work_is_refused(desk: Desk) -> None:
    for method, url in (
        ("PUT", f"{URL}/case_received/en"),
        ("POST", f"{URL}/case_received/preview"),
    ):
        refused = await desk.http.request(
            method, url, json={"subject": "s", "text": NESTED}, headers=desk.headers
        )
        assert refused.status_code == 422, refused.text
        assert "the template does too much work" in refused.json()["detail"]
        assert refused.json()["detail"].startswith("text:")
    read = await desk.http.get(f"{URL}/case_received/en", headers=desk.headers)
    assert read.json()["custom"] is False


async def test_unknown_kinds_and_languages_name_the_allowed_ones(desk: Desk) -> None:
    language = await desk.http.put(f"{URL}/invitation/fr", json=DRAFT, headers=desk.headers)
    assert language.status_code == 422
    assert "en, zh-Hans" in language.json()["detail"]
    assert (await desk.http.get(f"{URL}/invitation/fr", headers=desk.headers)).status_code == 422
    assert (await desk.http.delete(f"{URL}/invitation/fr", headers=desk.headers)).status_code == 422
    kind = await desk.http.put(f"{URL}/welcome/en", json=DRAFT, headers=desk.headers)
    assert kind.status_code == 422
    assert "invitation" in kind.text


async def test_only_admins(desk: Desk, tenants: Tenants) -> None:
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    for method, url in (
        ("GET", URL),
        ("GET", f"{URL}/invitation/en"),
        ("PUT", f"{URL}/invitation/en"),
        ("DELETE", f"{URL}/invitation/en"),
        ("GET", f"{URL}/invitation/preview"),
        ("POST", f"{URL}/invitation/preview"),
    ):
        body = DRAFT if method in ("PUT", "POST") else None
        answer = await desk.http.request(method, url, json=body, headers=agent.headers)
        assert answer.status_code == 403, (method, url, answer.text)


async def test_template_for_finds_the_tenant_s_template_or_none(
    desk: Desk, tenants: Tenants
) -> None:
    saved = await desk.http.put(f"{URL}/password_reset/zh-Hans", json=PLAIN, headers=desk.headers)
    assert saved.status_code == 200, saved.text
    other = await tenants.create()
    container = desk.container
    async with container.unit_of_work(desk.tenant.id) as uow:
        found = await template_for(uow, "password_reset", "zh-Hans")
        assert found == MailTemplate(PLAIN["subject"], PLAIN["text"])
        assert await template_for(uow, "password_reset", "zh-CN") == found
        assert await template_for(uow, "password_reset", "en") is None
        assert await template_for(uow, "invitation", "zh-Hans") is None
    async with container.unit_of_work(other.id) as uow:
        assert await template_for(uow, "password_reset", "zh-Hans") is None


async def test_the_store_keeps_one_template_per_kind_and_language(
    desk: Desk, tenants: Tenants
) -> None:
    other = await tenants.create()
    for tenant_id in (desk.tenant.id, other.id):
        async with desk.container.unit_of_work(tenant_id) as uow:
            await uow.begin_write()
            uow.notification_templates.add(
                NotificationTemplate(kind="invitation", language="en", subject="s", text="t")
            )
            await uow.commit()  # the same kind and language in another tenant is fine
    async with desk.container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        uow.notification_templates.add(
            NotificationTemplate(kind="invitation", language="en", subject="again", text="t")
        )
        with pytest.raises(IntegrityError):
            await uow.commit()
    async with desk.container.unit_of_work(desk.tenant.id) as uow:
        rows = await uow.notification_templates.all()
        assert [(row.kind, row.subject, row.tenant_id) for row in rows] == [
            ("invitation", "s", desk.tenant.id)
        ]
