"""An admin writes the desk's own "case received" mail in the browser: a draft that does not
render is named beside its field, the preview shows the mail with sample values, saving makes
the list say "customised", and a reset brings back the built-in one; the screens in Chinese
leave no English."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Server, english_in, screenshot, shown_text, sign_in_by_link

ADMIN = "nora.notes@demo.casedesk.local"
PASSWORD = "the notifications admin's password"


@pytest.fixture(scope="module")
def link(server: Server) -> str:
    with server.api() as api:
        made = api.post("/users", json={"email": ADMIN, "name": "Nora Notes", "role": "admin"})
        made.raise_for_status()
        answer = api.post(f"/users/{made.json()['id']}/password-link", json={})
        answer.raise_for_status()
    return str(answer.json()["url"])


async def test_an_admin_customises_previews_and_resets_a_notification(
    server: Server, link: str, page: Page, browser: Browser
) -> None:
    await sign_in_by_link(page, server, link, ADMIN, PASSWORD)
    await page.get_by_role("link", name="Admin", exact=True).click()
    await page.get_by_role("link", name="Notifications", exact=True).click()
    row = page.locator("#kind-case_received")
    await expect(row).to_contain_text("Case received")
    await row.get_by_role("link").first.click()
    await expect(page.locator("#n-state")).to_contain_text("Built-in")

    await page.get_by_label("Subject", exact=True).fill("We have your mail, {{ customer.nam")
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("#n-subject-problem")).to_contain_text("line 1: unexpected end")
    await expect(page.get_by_label("Subject", exact=True)).to_have_attribute("aria-invalid", "true")

    await page.get_by_label("Subject", exact=True).fill("We have your mail, {{ customer.name }}")
    await page.get_by_role("button", name="Preview").click()
    subject = page.locator("#n-preview-subject")
    await expect(subject).to_have_text("We have your mail, Ann Lee [#1042]")
    await screenshot(page, "admin-notification-preview")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("The template is saved")
    await expect(page.locator("#n-state")).to_contain_text("Customised")
    with server.api() as api:
        saved = api.get("/notifications/case_received/en").json()
    assert saved["custom"] is True
    assert saved["subject"] == "We have your mail, {{ customer.name }}"

    await page.get_by_role("link", name="Back to the notifications").click()
    await expect(page.locator("#kind-case_received")).to_contain_text("customised")
    await page.locator("#kind-case_received").get_by_role("link", name="customised").click()
    await page.get_by_role("button", name="Reset to built-in").click()
    await expect(page.get_by_role("status")).to_contain_text("The built-in template is used")
    with server.api() as api:
        assert api.get("/notifications/case_received/en").json()["custom"] is False

    context = await browser.new_context(locale="zh-CN")
    chinese = await context.new_page()
    try:
        await sign_in_by_link(chinese, server, link, ADMIN, PASSWORD)
        for path in ("/app/admin/notifications", "/app/admin/notifications/case_solved/zh-Hans"):
            await chinese.goto(f"{server.url}{path}")
            shown = await shown_text(chinese)
            assert "通知" in shown or "邮件" in shown, path
            left = english_in(shown)
            assert left == [], f"{path} still says {left}"
    finally:
        await context.close()
