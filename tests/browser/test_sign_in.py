"""Signing in as a person does it, in a real browser: the admin opens the one-time link the
CLI printed, chooses a password, signs in, signs out; the same screens in Chinese."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Server, screenshot

ADMIN = "admin@demo.casedesk.local"
PASSWORD = "a long demo password"


def _set_password(page: Page, link: str, password: str = PASSWORD) -> None:
    page.goto(link)
    page.get_by_label("New password").fill(password)
    page.get_by_label("The same password again").fill(password)
    page.get_by_role("button", name="Set password").click()


def test_the_admin_sets_a_password_from_the_link_signs_in_and_out(
    server: Server, page: Page
) -> None:
    link = server.password_link("demo", ADMIN)
    page.goto(link)
    expect(page.get_by_role("heading", name="Welcome to Demo")).to_be_visible()
    screenshot(page, "set-password")
    page.get_by_label("New password").fill("short")
    page.get_by_label("The same password again").fill("different")
    page.get_by_role("button", name="Set password").click()
    # the browser's own check refuses a short password before anything is sent
    expect(page).to_have_url(link)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD + "!")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("alert")).to_have_text("The two passwords are not the same.")
    _set_password(page, link)

    expect(page.get_by_role("status")).to_have_text("Your password is set. Sign in with it.")
    expect(page.get_by_label("Workspace")).to_have_value("demo")
    page.get_by_label("E-mail address").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("password is wrong")
    screenshot(page, "sign-in-refused")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/app")
    expect(page.get_by_role("heading", name="Hello, Demo Admin")).to_be_visible()
    screenshot(page, "workbench")

    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(f"{server.url}/sign-in")
    page.goto(f"{server.url}/app")
    expect(page).to_have_url(f"{server.url}/sign-in?next=/app")


def test_the_sign_in_screens_in_chinese_leave_no_english(server: Server, browser: Browser) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{server.url}/sign-in?workspace=demo")
        expect(page.get_by_role("heading", name="登录 casedesk")).to_be_visible()
        expect(page.get_by_label("电子邮件地址")).to_be_visible()
        text = page.locator("main").inner_text()
        assert "Sign" not in text
        assert "Password" not in text
        screenshot(page, "sign-in-zh")
    finally:
        context.close()
