"""An admin manages people and delivery in the browser: invites a user and passes on the
link shown, makes an API key whose secret is shown once; and the same screens in Chinese
leave no English."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Server, english_in, screenshot, shown_text

ADMIN = "grace.ops@demo.casedesk.local"
PASSWORD = "the operations admin's password"
TENANT = "demo"


async def _sign_in(page: Page, server: Server) -> None:
    """A second admin of the demo tenant (made the first time) signs in."""
    with server.api() as api:
        listed = api.get("/users", params={"limit": 200}).json()["items"]
        if not any(user["email"] == ADMIN for user in listed):
            made = api.post("/users", json={"email": ADMIN, "name": "Grace", "role": "admin"})
            made.raise_for_status()
            link = api.post(f"/users/{made.json()['id']}/password-link", json={})
            link.raise_for_status()
            await page.goto(link.json()["url"])
            await page.locator("input[name=password]").fill(PASSWORD)
            await page.locator("input[name=password_again]").fill(PASSWORD)
            await page.locator("main button[type=submit]").click()
            await expect(page.locator("input[name=email]")).to_be_visible()
    await page.goto(f"{server.url}/sign-in?workspace={TENANT}")
    await page.locator("input[name=email]").fill(ADMIN)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("main button[type=submit]").click()
    await expect(page).to_have_url(re.compile(r"/app/cases"))


async def test_an_admin_invites_a_user_and_makes_an_api_key(
    server: Server, page: Page, browser: Browser
) -> None:
    await _sign_in(page, server)
    await page.get_by_role("link", name="Admin", exact=True).click()
    await page.get_by_role("link", name="Users", exact=True).click()
    await page.get_by_label("Name", exact=True).fill("Linus Pauling")
    await page.get_by_label("E-mail address").fill("linus@demo.casedesk.local")
    await page.get_by_label("Role", exact=True).select_option("agent")
    await page.get_by_role("button", name="Invite", exact=True).click()
    link = page.get_by_label("One-time link")
    await expect(link).to_have_value(re.compile(r"/set-password/"))
    await expect(page.locator("table.cases")).to_contain_text("linus@demo.casedesk.local")
    await screenshot(page, "admin-users-invited")
    url = await link.input_value()

    invited = await browser.new_context(locale="en-US")
    try:
        guest = await invited.new_page()
        await guest.goto(url)
        await guest.locator("input[name=password]").fill("Linus's own password")
        await guest.locator("input[name=password_again]").fill("Linus's own password")
        await guest.locator("main button[type=submit]").click()
        await guest.locator("input[name=email]").fill("linus@demo.casedesk.local")
        await guest.locator("input[name=password]").fill("Linus's own password")
        await guest.locator("main button[type=submit]").click()
        await expect(guest).to_have_url(re.compile(r"/app/cases"))
    finally:
        await invited.close()

    await page.get_by_role("link", name="API keys").click()
    await page.get_by_label("Name", exact=True).fill("order sync")
    await page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Key", exact=True)
    await expect(secret).to_have_value(re.compile(r"^cdk_"))
    await expect(page.get_by_text("it is shown only this once")).to_be_visible()
    await expect(page.get_by_role("button", name="Copy", exact=True)).to_be_visible()
    await screenshot(page, "admin-key-created")
    key = await secret.input_value()
    me = httpx.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200
    await page.get_by_role("link", name="API keys").click()
    await expect(page.get_by_label("Key", exact=True)).to_have_count(0)
    assert key not in await page.content()


async def test_the_people_and_delivery_screens_in_chinese_leave_no_english(
    server: Server, browser: Browser
) -> None:
    with server.api() as api:
        hook = api.post(
            "/webhooks",
            json={"name": "crm", "url": "https://hooks.example.com/casedesk", "events": ["*"]},
        )
        hook.raise_for_status()
        delivery = api.post(f"/webhooks/{hook.json()['id']}/test")
        delivery.raise_for_status()
    base = f"{server.url}/app/admin/webhooks/{hook.json()['id']}"
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    try:
        await _sign_in(page, server)
        for path, name in (
            ("/app/admin/users", "admin-users-zh"),
            ("/app/admin/keys", "admin-keys-zh"),
            ("/app/admin/webhooks", "admin-webhooks-zh"),
            (base.removeprefix(server.url), "admin-webhook-zh"),
            (f"{base.removeprefix(server.url)}/deliveries/{delivery.json()['id']}", None),
            ("/app/admin/dead-letters", "admin-dead-letters-zh"),
        ):
            await page.goto(f"{server.url}{path}")
            shown = await shown_text(page)
            assert "管理" in shown
            left = english_in(shown)
            assert left == [], f"{path} still says {left}"
            if name:
                await screenshot(page, name)
    finally:
        await context.close()
