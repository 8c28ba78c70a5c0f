"""Attachments on the screens: the workbench's and the portal's case pages list each
comment's files with download links and show the safe images as thumbnails; the portal
serves a customer only the files of public comments on their own cases."""

from __future__ import annotations

from typing import Any

import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.integration.web.test_portal import sign_in_customer
from tests.support.cases import Desk
from tests.support.web import signed_in

# The attachments' storage is tested through the API on every database.
pytestmark = pytest.mark.backends("sqlite")

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81"
    b"\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)
HTML = b"<html><script>alert(1)</script></html>"


async def _comment_with_files(
    desk: Desk, case_id: str, *, public: bool, body: str
) -> list[dict[str, Any]]:
    uploaded = await desk.http.post(
        f"/api/v1/cases/{case_id}/attachments",
        files=[
            ("files", ("shot.png", PNG, "image/png")),
            ("files", ("page.html", HTML, "text/html")),
        ],
        headers=desk.headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    items: list[dict[str, Any]] = uploaded.json()["items"]
    added = await desk.http.post(
        f"/api/v1/cases/{case_id}/comments",
        json={"body": body, "public": public, "attachment_ids": [i["id"] for i in items]},
        headers=desk.headers,
    )
    assert added.status_code == 201, added.text
    return items


async def test_the_case_page_lists_a_comments_files_with_thumbnails(
    desk: Desk, tenants: Tenants
) -> None:
    case = await desk.new_case()
    png, html = await _comment_with_files(desk, case["id"], public=False, body="two files")
    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    await signed_in(desk.http, desk.tenant, agent.id)
    page = await desk.http.get(f"/app/cases/{case['number']}")
    assert page.status_code == 200, page.text
    assert f'<img class="thumb" src="/app/attachments/{png["id"]}"' in page.text
    assert f'src="/app/attachments/{html["id"]}"' not in page.text, "no HTML in an <img>"
    assert f'<a href="/app/attachments/{html["id"]}" download' in page.text
    image = await desk.http.get(f"/app/attachments/{png['id']}")
    assert (image.status_code, image.content) == (200, PNG)
    assert image.headers["content-disposition"].startswith("inline;")
    saved = await desk.http.get(f"/app/attachments/{html['id']}")
    assert saved.content == HTML
    assert saved.headers["content-disposition"].startswith("attachment;")
    assert saved.headers["content-security-policy"] == "sandbox"
    assert saved.headers["x-content-type-options"] == "nosniff"


async def test_another_tenants_attachment_is_not_found_on_the_workbench(
    desk: Desk, tenants: Tenants
) -> None:
    case = await desk.new_case()
    png, _html = await _comment_with_files(desk, case["id"], public=True, body="x")
    other = await tenants.create()
    await signed_in(desk.http, other, other.admin_id)
    assert (await desk.http.get(f"/app/attachments/{png['id']}")).status_code == 404


async def test_the_portal_shows_the_files_of_public_comments_only(desk: Desk) -> None:
    case = await desk.new_case(customer={"email": "ana@example.com"})
    shown, _ = await _comment_with_files(desk, case["id"], public=True, body="see the photo")
    hidden, _ = await _comment_with_files(desk, case["id"], public=False, body="internal")
    other_case = await desk.new_case(customer={"email": "bob@example.com"})
    foreign, _ = await _comment_with_files(desk, other_case["id"], public=True, body="bob's")
    workspace = desk.tenant.slug
    await sign_in_customer(desk.http, workspace, "ana@example.com")
    page = await desk.http.get(f"/portal/{workspace}/cases/{case['number']}")
    assert page.status_code == 200, page.text
    assert f'<img class="thumb" src="/portal/{workspace}/attachments/{shown["id"]}"' in page.text
    assert hidden["id"] not in page.text
    image = await desk.http.get(f"/portal/{workspace}/attachments/{shown['id']}")
    assert (image.status_code, image.content) == (200, PNG)
    for refused in (hidden, foreign):
        response = await desk.http.get(f"/portal/{workspace}/attachments/{refused['id']}")
        assert response.status_code == 404, refused
