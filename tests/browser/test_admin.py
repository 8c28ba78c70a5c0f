"""An admin configures the desk in the browser: a queue, a state machine whose validation
error is shown and fixed before it is published, and a template with a form."""

from __future__ import annotations

import json

from playwright.async_api import Page, expect

from tests.browser.conftest import Server, screenshot

ADMIN = "ada@demo.casedesk.local"
PASSWORD = "the second admin's password"
BROKEN = {
    "states": [
        {"code": "new", "name": "New", "type": "start"},
        {"code": "done", "name": "Done", "type": "end"},
    ],
    "transitions": [{"action": "finish", "name": "Finish", "from": "new", "to": "gone"}],
}


async def _sign_in_as_admin(page: Page, server: Server) -> None:
    """A second admin of the demo tenant, invited for this test, signs in."""
    with server.api() as api:
        made = api.post("/users", json={"email": ADMIN, "name": "Ada Lovelace", "role": "admin"})
        made.raise_for_status()
        link = api.post(f"/users/{made.json()['id']}/password-link", json={})
        link.raise_for_status()
    await page.goto(link.json()["url"])
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("input[name=password_again]").fill(PASSWORD)
    await page.locator("main button[type=submit]").click()
    await page.locator("input[name=email]").fill(ADMIN)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("main button[type=submit]").click()
    await expect(page).to_have_url(f"{server.url}/app/cases?view=mine")


async def test_an_admin_makes_a_queue_a_machine_and_a_template(server: Server, page: Page) -> None:
    await _sign_in_as_admin(page, server)
    await page.get_by_role("link", name="Admin", exact=True).click()
    await expect(page.get_by_role("heading", name="Queues", exact=True)).to_be_visible()
    await page.get_by_label("Code").fill("vip")
    await page.get_by_label("Name").fill("VIP customers")
    await page.get_by_role("button", name="Create queue").click()
    await expect(page.locator("table.cases")).to_contain_text("VIP customers")

    await page.get_by_role("link", name="State machines").click()
    await page.get_by_label("Code").fill("flow")
    await page.get_by_label("Name").fill("Flow")
    await page.get_by_label("States and transitions (JSON)").fill(json.dumps(BROKEN, indent=2))
    await page.get_by_role("button", name="Save draft").click()
    problems = page.get_by_role("alert")
    await expect(problems).to_contain_text("The draft cannot be published yet")
    await expect(problems).to_contain_text("gone")
    await expect(page.get_by_role("button", name="Publish the draft")).to_be_disabled()
    await screenshot(page, "machine-problems")

    fixed = json.dumps(BROKEN, indent=2).replace('"to": "gone"', '"to": "done"')
    await page.get_by_label("States and transitions (JSON)").fill(fixed)
    await page.get_by_role("button", name="Save draft").click()
    await expect(page.get_by_text("The draft has no problems.")).to_be_visible()
    await expect(page.locator("svg.machine-graph")).to_contain_text("Finish")
    await page.get_by_role("button", name="Publish the draft").click()
    await expect(page.get_by_role("status")).to_have_text("Published as version 1.")
    await screenshot(page, "machine-published")

    await page.get_by_role("link", name="Templates").click()
    await page.get_by_label("Code").fill("refund")
    await page.get_by_label("Name", exact=True).fill("Refund")
    await page.get_by_label("State machine").select_option("flow")
    await page.get_by_label("Default queue").select_option("vip")
    schema = {"type": "object", "properties": {"order": {"type": "string"}}}
    await page.get_by_label("The case form (JSON Schema)").fill(json.dumps(schema))
    await page.get_by_role("button", name="Create template").click()
    await expect(page.locator("table.cases")).to_contain_text("Refund")
    with server.api() as api:
        made = api.get("/templates/refund").json()
    assert (made["state_machine"], made["default_queue"], made["form_schema"]) == (
        "flow",
        "vip",
        schema,
    )
