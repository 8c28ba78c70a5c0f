"""Signing in as a person does it, in a real browser: the admin opens the one-time link the
CLI printed, chooses a password, signs in, signs out; the same screens in Chinese."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Server, screenshot

ADMIN = "admin@demo.casedesk.local"
PASSWORD = "a long demo password"


async def _set_password(page: Page, link: str, password: str = PASSWORD) -> None:
    await page.goto(link)
    await page.get_by_label("New password").fill(password)
    await page.get_by_label("The same password again").fill(password)
    await page.get_by_role("button", name="Set password").click()


async def test_the_admin_sets_a_password_from_the_link_signs_in_and_out(
    server: Server, page: Page
) -> None:
    link = server.password_link("demo", ADMIN)
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Welcome to Demo")).to_be_visible()
    await screenshot(page, "set-password")
    await page.get_by_label("New password").fill("short")
    await page.get_by_label("The same password again").fill("different")
    await page.get_by_role("button", name="Set password").click()
    # the browser's own check refuses a short password before anything is sent
    await expect(page).to_have_url(link)
    await page.get_by_label("New password").fill(PASSWORD)
    await page.get_by_label("The same password again").fill(PASSWORD + "!")
    await page.get_by_role("button", name="Set password").click()
    await expect(page.get_by_role("alert")).to_have_text("The two passwords are not the same.")
    await _set_password(page, link)

    await expect(page.get_by_role("status")).to_have_text("Your password is set. Sign in with it.")
    await expect(page.get_by_label("Workspace")).to_have_value("demo")
    await page.get_by_label("E-mail address").fill(ADMIN)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("password is wrong")
    await screenshot(page, "sign-in-refused")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{server.url}/app/cases?view=mine")
    await expect(page.get_by_role("heading", name="My open cases")).to_be_visible()
    await expect(page.get_by_role("navigation", name="Account")).to_contain_text("Demo Admin")

    await page.get_by_role("button", name="Sign out", exact=True).click()
    await expect(page).to_have_url(f"{server.url}/sign-in")
    await page.goto(f"{server.url}/app/cases?view=open")
    await expect(page).to_have_url(f"{server.url}/sign-in?next=/app/cases%3Fview%3Dopen")


async def test_the_sign_in_screens_in_chinese_leave_no_english(
    server: Server, browser: Browser
) -> None:
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    try:
        await page.goto(f"{server.url}/sign-in?workspace=demo")
        await expect(page.get_by_role("heading", name="登录 casedesk")).to_be_visible()
        await expect(page.get_by_label("电子邮件地址")).to_be_visible()
        text = await page.locator("main").inner_text()
        assert "Sign" not in text
        assert "Password" not in text
        await screenshot(page, "sign-in-zh")
    finally:
        await context.close()
