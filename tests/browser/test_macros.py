"""An agent answers a case with a macro, as a person clicks: picks it beside the reply box,
reads and edits the text it put there, sends; the macro's actions come with the reply. In
Chinese, the picker and the macros screen say nothing in English."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Server, english_in, screenshot, shown_text, sign_in_by_link

AGENT = "macro-agent@demo.casedesk.local"
PASSWORD = "the macro agent's long password"
MACHINE = {
    "code": "mdesk",
    "name": "Macro desk",
    "states": [
        {"code": "new", "name": "New", "type": "start"},
        {"code": "solved", "name": "Solved", "type": "end"},
    ],
    "transitions": [{"action": "solve", "name": "Solve", "from": "new", "to": "solved"}],
}


@pytest.fixture(scope="module")
def desk(server: Server) -> Iterator[dict[str, str]]:
    """A queue, machine and template of their own in the demo tenant, a shared macro, and an
    agent's one-time link."""
    with server.api() as api:
        api.post("/queues", json={"code": "mqueue", "name": "Macro queue"}).raise_for_status()
        api.post("/state-machines", json=MACHINE).raise_for_status()
        api.post("/state-machines/mdesk/publish").raise_for_status()
        api.post(
            "/templates",
            json={
                "code": "mquestion",
                "name": "Macro question",
                "state_machine": "mdesk",
                "default_queue": "mqueue",
                "form_schema": {"type": "object"},
            },
        ).raise_for_status()
        api.post(
            "/macros",
            json={
                "name": "Refund-42",
                "body": "Hello {{customer.name}}, case {{case.number}} is refunded. {{agent.name}}",
                "public": True,
                "shared": True,
                "actions": [
                    {"type": "set_priority", "priority": "high"},
                    {"type": "add_tag", "tag": "refund"},
                ],
            },
        ).raise_for_status()
        agent = api.post("/users", json={"email": AGENT, "name": "Mia Macro", "role": "agent"})
        agent.raise_for_status()
        link = api.post(f"/users/{agent.json()['id']}/password-link", json={})
        link.raise_for_status()
        yield {"link": link.json()["url"]}


def _new_case(server: Server) -> dict[str, object]:
    with server.api() as api:
        made = api.post(
            "/cases",
            json={
                "template": "mquestion",
                "title": "Charged twice",
                "customer": {"email": "ada@example.com", "name": "Ada"},
            },
        )
        made.raise_for_status()
        case: dict[str, object] = made.json()
        return case


async def _sign_in(page: Page, server: Server, desk: dict[str, str]) -> None:
    await sign_in_by_link(page, server, desk["link"], AGENT, PASSWORD)


async def test_an_agent_applies_a_macro_reviews_the_text_and_sends(
    server: Server, desk: dict[str, str], page: Page
) -> None:
    case = _new_case(server)
    await _sign_in(page, server, desk)
    await page.goto(f"{server.url}/app/cases/{case['number']}")
    await page.get_by_label("Macro", exact=True).select_option(label="Refund-42")
    await page.get_by_role("button", name="Use macro").click()
    reply = page.get_by_label("Reply from macro “Refund-42”")
    await expect(reply).to_have_value(f"Hello Ada, case {case['number']} is refunded. Mia Macro")
    await expect(page.locator("ul.macro-actions")).to_contain_text("Add tag refund")
    await reply.fill(f"Hello Ada, case {case['number']} is refunded today. Mia")
    await screenshot(page, "macro-review")
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("section.timeline")).to_contain_text("is refunded today")
    with server.api() as api:
        after = api.get(f"/cases/{case['id']}").json()
    assert (after["priority"], after["tags"]) == ("high", ["refund"])
    await screenshot(page, "macro-sent")


async def test_macros_in_chinese_leave_no_english(
    server: Server, desk: dict[str, str], browser: Browser
) -> None:
    case = _new_case(server)
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    try:
        await _sign_in(page, server, desk)
        for url, name in (
            (f"{server.url}/app/macros", "macros-zh"),
            (f"{server.url}/app/cases/{case['number']}", "macro-picker-zh"),
        ):
            await page.goto(url)
            if name == "macro-picker-zh":
                await page.get_by_role("button", name="使用宏").click()
            shown = await shown_text(page)
            assert "宏" in shown
            left = english_in(shown)
            assert left == [], f"{url} still says {left}"
            await screenshot(page, name)
    finally:
        await context.close()
