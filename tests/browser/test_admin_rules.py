"""An admin builds an event rule in the browser, row by row (a condition more, an action
swapped for another), saves it and finds it listed; the same screens in Chinese say nothing
in English."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Server, english_in, screenshot, shown_text

RULES_ADMIN = "grace.rules@demo.casedesk.local"
PASSWORD = "the rules admin's password"


@pytest.fixture(scope="module")
def invited(server: Server) -> Iterator[str]:
    """A second admin of the demo tenant, invited for these tests: their one-time link."""
    with server.api() as api:
        made = api.post(
            "/users", json={"email": RULES_ADMIN, "name": "Grace Hopper", "role": "admin"}
        )
        made.raise_for_status()
        link = api.post(f"/users/{made.json()['id']}/password-link", json={})
        link.raise_for_status()
        yield link.json()["url"]


async def _sign_in(page: Page, server: Server, link: str) -> None:
    """By the fields' names, so it works in any language."""
    await page.goto(link)
    if await page.locator("input[name=password_again]").count():
        await page.locator("input[name=password]").fill(PASSWORD)
        await page.locator("input[name=password_again]").fill(PASSWORD)
        await page.locator("form button[type=submit]").last.click()
    await page.goto(f"{server.url}/sign-in?workspace=demo")
    await page.locator("input[name=email]").fill(RULES_ADMIN)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("main button[type=submit]").click()
    await expect(page).to_have_url(re.compile(r"/app/cases\?view=mine$"))


async def test_an_admin_builds_a_rule_row_by_row(server: Server, invited: str, page: Page) -> None:
    await _sign_in(page, server, invited)
    await page.goto(f"{server.url}/app/admin/queues")
    await page.get_by_role("link", name="Rules", exact=True).click()
    await page.get_by_role("link", name="New event rule").click()
    await page.get_by_label("Name", exact=True).fill("Hot printers")
    await page.get_by_label(re.compile(r"case\.created")).check()
    first = page.get_by_role("group", name="Condition 1")
    await first.get_by_label("Field").fill("case.priority")
    await first.get_by_label("Operator").select_option("in")
    await first.get_by_label("Value").fill('["high", "urgent"]')
    await page.get_by_role("button", name="Add a condition").click()
    second = page.get_by_role("group", name="Condition 2")
    await expect(second).to_be_visible()
    await expect(first.get_by_label("Value")).to_have_value('["high", "urgent"]')
    await second.get_by_label("Field").fill("case.title")
    await second.get_by_label("Operator").select_option("contains")
    await second.get_by_label("Value").fill("printer")
    await page.get_by_label("New action").select_option("add_tag")
    await page.get_by_role("button", name="Add the action").click()
    await page.get_by_role("group", name="Action 1").get_by_role("button", name="Remove").click()
    tagging = page.get_by_role("group", name="Action 1")
    await expect(tagging).to_contain_text("Add a tag")
    await tagging.get_by_label("Tag").fill("hot")
    await screenshot(page, "rule-builder")
    await page.get_by_role("button", name="Save the rule").click()
    await expect(page.get_by_role("status")).to_have_text("The rule was saved.")
    await expect(page.locator("table.rules")).to_contain_text("Hot printers")
    await screenshot(page, "rules-list")
    with server.api() as api:
        [rule] = [r for r in api.get("/rules").json() if r["name"] == "Hot printers"]
    assert rule["on"] == ["case.created"]
    assert rule["conditions"] == {
        "all": [
            {"field": "case.priority", "op": "in", "value": ["high", "urgent"]},
            {"field": "case.title", "op": "contains", "value": "printer"},
        ]
    }
    assert rule["actions"] == [{"type": "add_tag", "tag": "hot"}]


async def test_the_rules_and_sla_screens_in_chinese_leave_no_english(
    server: Server, invited: str, browser: Browser
) -> None:
    with server.api() as api:
        made = api.post(
            "/time-rules",
            json={
                "name": "Nudge",
                "since": "updated",
                "hours": 2,
                "actions": [{"type": "add_comment", "body": "Any news?"}],
            },
        )
        made.raise_for_status()
        time_rule = made.json()["id"]
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    try:
        await _sign_in(page, server, invited)
        for path, name in (
            ("/app/admin/rules", "rules-zh"),
            ("/app/admin/rules/new", "rule-new-zh"),
            (f"/app/admin/time-rules/{time_rule}", "time-rule-zh"),
            ("/app/admin/sla", None),
            ("/app/admin/sla/new", "sla-policy-zh"),
        ):
            await page.goto(f"{server.url}{path}")
            # what the desk itself holds (names, codes) is marked translate="no"
            shown = await shown_text(page)
            assert "规则" in shown or "策略" in shown
            left = english_in(shown)
            assert left == [], f"{path} still says {left}"
            if name:
                await screenshot(page, name)
    finally:
        await context.close()
