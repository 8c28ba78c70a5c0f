"""A customer in the portal, as a person clicks: asks for a sign-in link (shown on screen
in the embedded mode), opens a case from the public template with its form, replies,
and rates it once an agent solved it; in Chinese, the portal leaves no English."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Server, english_in, screenshot, shown_text

FLOW = {
    "code": "portal-flow",
    "name": "Portal flow",
    "states": [
        {"code": "new", "name": "New", "type": "start"},
        {"code": "solved", "name": "Solved", "type": "end"},
    ],
    "transitions": [{"action": "solve", "name": "Solve", "from": "new", "to": "solved"}],
}
SCHEMA = {
    "type": "object",
    "required": ["device"],
    "properties": {
        "device": {"type": "string", "enum": ["printer", "scanner"], "title": "Device"},
        "copies": {"type": "integer", "minimum": 1, "title": "Copies a day"},
    },
}


@pytest.fixture(scope="module")
def portal(server: Server) -> str:
    """A public template in the demo tenant; the portal's address."""
    with server.api() as api:
        api.post("/queues", json={"code": "portal-help", "name": "Portal help"}).raise_for_status()
        api.post("/state-machines", json=FLOW).raise_for_status()
        api.post("/state-machines/portal-flow/publish").raise_for_status()
        api.post(
            "/templates",
            json={
                "code": "repair",
                "name": "Repair",
                "state_machine": "portal-flow",
                "default_queue": "portal-help",
                "form_schema": SCHEMA,
                "public": True,
            },
        ).raise_for_status()
    return f"{server.url}/portal/demo"


async def _sign_in(page: Page, portal: str, email: str) -> None:
    """By the fields' names, so it works in any language."""
    await page.goto(portal)
    await page.locator("input[name=email]").fill(email)
    await page.locator("form button[type=submit]").click()
    await page.locator("a.portal-link").click()
    await page.locator("form button[type=submit]").click()
    await expect(page).to_have_url(re.compile(r"/portal/demo/cases$"))


async def test_a_customer_opens_a_case_replies_and_rates_it(
    server: Server, portal: str, page: Page
) -> None:
    await _sign_in(page, portal, "dora@example.com")
    await screenshot(page, "portal-cases-empty")
    await page.get_by_role("link", name="Open a new case").click()
    await page.get_by_label("Subject").fill("The printer prints only blank pages")
    await page.get_by_label("Describe what happened").fill("Since this morning.")
    await page.get_by_label("Subject").fill("")
    await page.get_by_label("Device").select_option("printer")
    await page.get_by_role("button", name="Send").click()
    # a required field left empty is refused by the browser, before anything is sent
    await expect(page).to_have_url(re.compile(r"/cases/new$"))
    await page.get_by_label("Subject").fill("The printer prints only blank pages")
    await page.get_by_label("Copies a day").fill("40")
    await page.get_by_role("button", name="Send").click()
    await expect(page).to_have_url(re.compile(r"/portal/demo/cases/\d+$"))
    number = int(page.url.rsplit("/", 1)[1])
    await page.get_by_label("Your reply").fill("It also smells of toner.")
    await page.get_by_role("button", name="Send the reply").click()
    await expect(page.get_by_text("It also smells of toner.")).to_be_visible()

    with server.api() as api:
        (case,) = api.get("/cases", params={"customer": "dora@example.com"}).json()["items"]
        assert case["number"] == number
        assert api.get(f"/cases/{case['id']}").json()["form"] == {"device": "printer", "copies": 40}
        api.post(
            f"/cases/{case['id']}/comments", json={"body": "an internal remark", "public": False}
        ).raise_for_status()
        api.post(
            f"/cases/{case['id']}/comments", json={"body": "We sent a new drum.", "public": True}
        ).raise_for_status()
        api.post(f"/cases/{case['id']}/actions/solve", json={}).raise_for_status()
    await page.reload()
    await expect(page.get_by_text("We sent a new drum.")).to_be_visible()
    await expect(page.get_by_text("an internal remark")).to_have_count(0)
    await page.get_by_label("5 · Excellent").check()
    await page.get_by_label("Anything you want to add (optional)").fill("Quick and kind")
    await page.get_by_role("button", name="Send the rating").click()
    await expect(page.get_by_role("status")).to_contain_text("5 of 5")
    await screenshot(page, "portal-case-rated")
    with server.api() as api:
        rating = api.get(f"/cases/{case['id']}").json()["rating"]
        assert rating["score"] == 5
        assert rating["comment"] == "Quick and kind"


async def test_the_portal_in_chinese_leaves_no_english(
    server: Server, portal: str, browser: Browser
) -> None:
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    try:
        await _sign_in(page, portal, "erin@example.com")
        await page.goto(f"{portal}/cases/new")
        await page.locator("input[name=title]").fill("打印机着火了")
        await page.locator("select[name='form.device']").select_option("scanner")
        await page.locator("form[method=post] button[type=submit]").last.click()
        await expect(page).to_have_url(re.compile(r"/portal/demo/cases/\d+$"))
        case_url = page.url
        for url, name in (
            (portal + "/cases", "portal-cases-zh"),
            (portal + "/cases/new", "portal-new-zh"),
            (case_url, "portal-case-zh"),
        ):
            await page.goto(url)
            shown = await shown_text(page)
            assert "工单" in shown
            left = english_in(shown)
            assert left == [], f"{url} still says {left}"
            await screenshot(page, name)
    finally:
        await context.close()
