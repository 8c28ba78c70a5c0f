"""An admin looks after the integrations in the browser: the connectors, a connection made
through its form, and a failed execution step by step; the same screens in Chinese leave
no English.

A workflow on the generic webhook is published through the API with the demo key and a
delivery is posted to its hook, so that the server's own workers run (and fail) it."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Server, english_in, screenshot, shown_text

ADMIN = "ivy@demo.casedesk.local"
PASSWORD = "the integrations admin's password"
MACHINE = {
    "code": "integ-flow",
    "name": "Integration flow",
    "states": [
        {"code": "new", "name": "New", "type": "start"},
        {"code": "done", "name": "Done", "type": "end"},
    ],
    "transitions": [{"action": "finish", "name": "Finish", "from": "new", "to": "done"}],
}
BROKEN = {
    "code": "integ-broken",
    "name": "Cases from the shop",
    "trigger": {"connector": "webhook", "trigger": "delivery"},
    "steps": [
        {
            "name": "open",
            "kind": "create_case",
            "template": "integ-question",
            "title": "{{ trigger.body.missing.deeper }}",
        }
    ],
}


def _failed_execution(api: httpx.Client) -> str:
    """The id of the workflow's execution once the server's workers have failed it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = api.get("/executions", params={"workflow": BROKEN["code"], "status": "failed"})
        found.raise_for_status()
        if found.json()["items"]:
            return str(found.json()["items"][0]["id"])
        time.sleep(0.3)
    raise AssertionError("the delivery's execution did not fail in time")


@pytest.fixture(scope="module")
def integrations(server: Server) -> dict[str, str]:
    """A failed execution of a webhook workflow, and an admin's one-time link."""
    with server.api() as api:
        api.post("/queues", json={"code": "integ-q", "name": "Shop"}).raise_for_status()
        api.post("/state-machines", json=MACHINE).raise_for_status()
        api.post("/state-machines/integ-flow/publish").raise_for_status()
        api.post(
            "/templates",
            json={
                "code": "integ-question",
                "name": "Shop question",
                "state_machine": "integ-flow",
                "default_queue": "integ-q",
            },
        ).raise_for_status()
        api.post("/workflows", json=BROKEN).raise_for_status()
        published = api.post(f"/workflows/{BROKEN['code']}/publish")
        published.raise_for_status()
        hook = httpx.post(published.json()["subscription"]["hook_url"], json={"subject": "Hi"})
        assert hook.status_code < 300, hook.text
        execution = _failed_execution(api)
        made = api.post("/users", json={"email": ADMIN, "name": "Ivy Integrator", "role": "admin"})
        made.raise_for_status()
        link = api.post(f"/users/{made.json()['id']}/password-link", json={})
        link.raise_for_status()
    return {"link": link.json()["url"], "execution": execution}


async def _sign_in(page: Page, server: Server, link: str | None) -> None:
    """By the fields' names, so that it works in any language."""
    if link is not None:
        await page.goto(link)
        await page.locator("input[name=password]").fill(PASSWORD)
        await page.locator("input[name=password_again]").fill(PASSWORD)
        await page.locator("main button[type=submit]").click()
    else:
        await page.goto(f"{server.url}/sign-in?workspace=demo")
    await page.locator("input[name=email]").fill(ADMIN)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("main button[type=submit]").click()
    await expect(page).to_have_url(f"{server.url}/app/cases?view=mine")


async def test_an_admin_opens_connectors_makes_a_connection_and_reads_an_execution(
    server: Server, integrations: dict[str, str], page: Page
) -> None:
    await _sign_in(page, server, integrations["link"])
    await page.get_by_role("link", name="Admin", exact=True).click()
    await page.get_by_role("link", name="Connectors", exact=True).click()
    await expect(page.get_by_role("heading", name="Connectors", exact=True)).to_be_visible()
    await page.get_by_role("link", name="Generic REST poller").click()
    await expect(page.get_by_role("heading", name="Triggers")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("polling")
    await screenshot(page, "integrations-connector")

    await page.get_by_role("link", name="Make a connection with this connector").click()
    await page.get_by_label("Name", exact=True).fill("Orders API")
    await page.get_by_label("base_url").fill("https://orders.example.com")
    await page.get_by_label("token").fill("orders-token-0123456789")
    await page.get_by_role("button", name="Create connection").click()
    await expect(page.get_by_role("status")).to_have_text("The connection is made.")
    await expect(page.locator("main")).to_contain_text("****6789")
    await expect(page.locator("main")).not_to_contain_text("orders-token-0123456789")
    await screenshot(page, "integrations-connection")

    await page.get_by_role("link", name="Executions", exact=True).click()
    await page.get_by_label("Status").select_option("failed")
    await page.get_by_role("button", name="Show").click()
    await page.locator(f"a[href='/app/admin/executions/{integrations['execution']}']").click()
    await expect(page.get_by_role("heading", name="Steps")).to_be_visible()
    await expect(page.locator(".integ-step")).to_contain_text("trigger.body.missing.deeper")
    await expect(page.get_by_role("link", name="The traces of its calls")).to_have_attribute(
        "href", f"/app/admin/traces?execution={integrations['execution']}"
    )
    await expect(page.get_by_role("button", name="Retry")).to_be_visible()
    await screenshot(page, "integrations-execution")


async def test_the_integration_screens_in_chinese_leave_no_english(
    server: Server, integrations: dict[str, str], browser: Browser
) -> None:
    """Every text of the catalogs is Chinese on these screens; what is left in Latin
    letters is the desk's own data (names, codes, JSON), marked translate="no"."""
    with server.api() as api:
        connection = api.post(
            "/connections",
            json={"name": "Shop", "connector": "rest", "settings": {"base_url": "https://x.test"}},
        )
        connection.raise_for_status()
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    try:
        await _sign_in(page, server, None)
        for path, name in (
            ("/app/admin/connectors", "integrations-connectors-zh"),
            ("/app/admin/connectors/gmail", "integrations-connector-zh"),
            ("/app/admin/connections?connector=rest", "integrations-connections-zh"),
            (f"/app/admin/connections/{connection.json()['id']}", "integrations-connection-zh"),
            ("/app/admin/workflows", "integrations-workflows-zh"),
            (f"/app/admin/workflows/{BROKEN['code']}", "integrations-workflow-zh"),
            ("/app/admin/executions", "integrations-executions-zh"),
            (f"/app/admin/executions/{integrations['execution']}", "integrations-execution-zh"),
        ):
            await page.goto(f"{server.url}{path}")
            shown = await shown_text(page)
            assert "管理" in shown, path
            left = english_in(shown)
            assert left == [], f"{path} still says {left}"
            await screenshot(page, name)
    finally:
        await context.close()
