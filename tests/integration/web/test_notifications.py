"""The admins' notification screens over HTTP: the list of kinds per language, built-in or
customised; a template's page, previewed (the HTML in a sandboxed frame), saved, reset to
the built-in one; a draft's problem beside its field and nothing saved; in Chinese too; not
for agents or viewers; nothing of another tenant."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from casedesk.domain import notifications
from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.web import hidden, signed_in

# The pages run the activities the API runs, tested there on every database.
pytestmark = pytest.mark.backends("sqlite")
LIST = "/app/admin/notifications"
PAGE = f"{LIST}/invitation/en"
DRAFT = {
    "subject": "Join {{ desk.name }}",
    "text": "Hello {{ user.name }},\n{{ link }}",
    "html": "<p>Hello <b>{{ user.name }}</b> <script>alert(1)</script></p>",
}


@pytest.fixture
async def csrf(desk: Desk) -> str:
    await signed_in(desk.http, desk.tenant, desk.tenant.admin_id)
    page = await desk.http.get(LIST)
    assert page.status_code == 200, page.text
    return hidden(page.text, "csrf_token")


def _cell(page: str, kind: str, language: str) -> str:
    row = re.search(rf'<tr id="kind-{kind}">(.*?)</tr>', page, re.S)
    assert row is not None, kind
    cell = re.search(rf'href="{LIST}/{kind}/{language}" class="notification-(\w+)"', row.group(1))
    assert cell is not None, (kind, language)
    return cell.group(1)


def _problem(page: str, field: str) -> str:
    found = re.search(rf'id="n-{field}-problem"[^>]*>([^<]*)<', page)
    assert found is not None, f"no problem beside {field}"
    assert re.search(rf'id="n-{field}"[^>]*aria-invalid="true"', page), field
    return html.unescape(found.group(1))


async def _api_custom(desk: Desk) -> bool:
    read = await desk.http.get("/api/v1/notifications/invitation/en", headers=desk.headers)
    custom: bool = read.json()["custom"]
    return custom


async def test_the_list_shows_each_kind_per_language(desk: Desk, csrf: str) -> None:
    page = await desk.http.get(LIST)
    assert 'href="/app/admin/notifications" aria-current="page"' in page.text
    for kind in notifications.KINDS:
        for language in notifications.LANGUAGES:
            assert _cell(page.text, kind, language) == "builtin"
    saved = await desk.http.put(
        "/api/v1/notifications/invitation/zh-Hans", json=DRAFT, headers=desk.headers
    )
    assert saved.status_code == 200
    page = await desk.http.get(LIST)
    assert _cell(page.text, "invitation", "zh-Hans") == "custom"
    assert _cell(page.text, "invitation", "en") == "builtin"
    assert "customised" in page.text


async def test_edit_preview_save_and_reset(desk: Desk, csrf: str) -> None:
    page = await desk.http.get(PAGE)
    assert page.status_code == 200
    builtin = notifications.builtin("invitation", "en")
    assert html.escape(builtin.subject, quote=True) in page.text
    assert "Built-in:" in page.text
    assert "user.name" in page.text  # the values a template may use
    assert "Reset to built-in" not in page.text

    shown = await desk.http.post(f"{PAGE}/preview", data={"csrf_token": csrf} | DRAFT)
    assert shown.status_code == 200, shown.text
    subject = re.search(r'id="n-preview-subject"[^>]*>([^<]*)<', shown.text)
    assert subject is not None
    assert subject.group(1) == "Join Acme Support"
    assert "Hello Dee Park,\nhttps://desk.example.com/sign-in/link/abc" in shown.text
    frame = re.search(r'<iframe id="n-preview-html"[^>]*>', shown.text)
    assert frame is not None
    assert 'sandbox=""' in frame.group(0)
    assert "<script>" not in frame.group(0)  # the HTML is escaped into srcdoc
    assert "&lt;b&gt;Dee Park&lt;/b&gt;" in frame.group(0)
    assert html.escape(DRAFT["text"], quote=False) in shown.text  # the draft stays in the form
    assert await _api_custom(desk) is False  # a preview saves nothing

    saved = await desk.http.post(PAGE, data={"csrf_token": csrf} | DRAFT)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{PAGE}?done=saved"
    after = await desk.http.get(saved.headers["location"])
    assert "The template is saved" in after.text
    assert 'value="Join {{ desk.name }}"' in after.text
    assert "Reset to built-in" in after.text
    assert await _api_custom(desk) is True
    api = await desk.http.get("/api/v1/notifications/invitation/en", headers=desk.headers)
    assert api.json()["html"] == DRAFT["html"]
    blank_html = await desk.http.post(PAGE, data={"csrf_token": csrf} | DRAFT | {"html": ""})
    assert blank_html.status_code == 303
    api = await desk.http.get("/api/v1/notifications/invitation/en", headers=desk.headers)
    assert api.json()["html"] is None

    reset = await desk.http.post(f"{PAGE}/reset", data={"csrf_token": csrf})
    assert reset.status_code == 303
    back = await desk.http.get(reset.headers["location"])
    assert "The built-in template is used again." in back.text
    assert html.escape(builtin.subject, quote=True) in back.text
    assert await _api_custom(desk) is False


async def test_a_draft_s_problem_is_shown_beside_its_field(desk: Desk, csrf: str) -> None:
    broken = await desk.http.post(
        PAGE, data={"csrf_token": csrf} | DRAFT | {"text": "Hi\n{{ link }\n"}
    )
    assert broken.status_code == 422
    assert _problem(broken.text, "text").startswith("line 2:")
    assert "{{ link }" in broken.text  # what was typed is kept
    assert await _api_custom(desk) is False
    unknown = await desk.http.post(
        f"{PAGE}/preview", data={"csrf_token": csrf} | DRAFT | {"subject": "{{ nobody }}"}
    )
    assert unknown.status_code == 422
    assert "'nobody' is undefined" in _problem(unknown.text, "subject")
    busy = await desk.http.post(
        PAGE,
        data={"csrf_token": csrf}
        | DRAFT
        | {"html": "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}"},
    )
    assert busy.status_code == 422
    assert "the template does too much work" in _problem(busy.text, "html")
    blank = await desk.http.post(PAGE, data={"csrf_token": csrf} | DRAFT | {"subject": " "})
    assert blank.status_code == 422
    assert _problem(blank.text, "subject") == "write it first"
    assert await _api_custom(desk) is False


async def test_in_chinese(desk: Desk, csrf: str) -> None:
    listed = await desk.http.get(LIST, headers={"Accept-Language": "zh-CN"})
    assert "已收到工单" in listed.text
    assert "简体中文" in listed.text
    page = await desk.http.get(f"{LIST}/case_solved/zh-Hans", headers={"Accept-Language": "zh-CN"})
    assert "恢复为内置模板" not in page.text
    assert html.escape(notifications.builtin("case_solved", "zh-Hans").subject) in page.text


async def test_unknown_kinds_and_languages_are_not_found(desk: Desk, csrf: str) -> None:
    assert (await desk.http.get(f"{LIST}/welcome/en")).status_code == 404
    assert (await desk.http.get(f"{LIST}/invitation/fr")).status_code == 404
    posted = await desk.http.post(f"{LIST}/invitation/fr", data={"csrf_token": csrf} | DRAFT)
    assert posted.status_code == 404


async def test_another_tenant_s_template_is_not_shown(
    desk: Desk, csrf: str, tenants: Tenants
) -> None:
    other = await tenants.create()
    saved = await desk.http.put(
        "/api/v1/notifications/invitation/en", json=DRAFT, headers=other.headers
    )
    assert saved.status_code == 200
    page = await desk.http.get(PAGE)
    assert "Join {{ desk.name }}" not in page.text
    assert _cell((await desk.http.get(LIST)).text, "invitation", "en") == "builtin"
    reset = await desk.http.post(f"{PAGE}/reset", data={"csrf_token": csrf})
    assert reset.status_code == 303
    kept = await desk.http.get("/api/v1/notifications/invitation/en", headers=other.headers)
    assert kept.json()["custom"] is True


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
async def test_the_screens_are_not_for_agents_or_viewers(
    desk: Desk, tenants: Tenants, role: Role
) -> None:
    member = await tenants.member(desk.tenant.id, role)
    http: httpx.AsyncClient = desk.http
    await signed_in(http, desk.tenant, member.id)
    csrf = hidden((await http.get("/app/cases?view=open")).text, "csrf_token")
    for where in (LIST, PAGE):
        assert (await http.get(where)).status_code == 403, where
    for where in (PAGE, f"{PAGE}/preview", f"{PAGE}/reset"):
        posted = await http.post(where, data={"csrf_token": csrf} | DRAFT)
        assert posted.status_code == 403, where
    assert await _api_custom(desk) is False
    nav = await http.get("/app/cases?view=open")
    assert LIST not in nav.text
