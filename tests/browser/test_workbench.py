"""An agent works a case in the workbench, as a person clicks: from a view to the case, a
public reply, an internal note, an action, a transfer, to solved; a stale change refused.

The desk is set up through the API with the demo key (queues, a published machine, a
template); the agent is invited with a one-time link like any new colleague."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Server, english_in, screenshot, shown_text, sign_in_by_link

AGENT = "agent@demo.casedesk.local"
PASSWORD = "the agent's long password"
MACHINE = {
    "code": "desk",
    "name": "Desk",
    "states": [
        {"code": "new", "name": "New", "type": "start"},
        {"code": "open", "name": "Open", "type": "normal"},
        {"code": "solved", "name": "Solved", "type": "end"},
    ],
    "transitions": [
        {"action": "start", "name": "Start work", "from": "new", "to": "open"},
        {"action": "solve", "name": "Solve", "from": "open", "to": "solved"},
    ],
}


@pytest.fixture(scope="module")
def desk(server: Server) -> Iterator[dict[str, str]]:
    """Queues, machine, template and an agent in the demo tenant; the agent's link."""
    with server.api() as api:
        for code in ("support", "billing"):
            api.post("/queues", json={"code": code, "name": code.title()}).raise_for_status()
        api.post("/state-machines", json=MACHINE).raise_for_status()
        api.post("/state-machines/desk/publish").raise_for_status()
        api.post(
            "/templates",
            json={
                "code": "question",
                "name": "Question",
                "state_machine": "desk",
                "default_queue": "support",
                "form_schema": {"type": "object"},
            },
        ).raise_for_status()
        agent = api.post("/users", json={"email": AGENT, "name": "Alex Agent", "role": "agent"})
        agent.raise_for_status()
        link = api.post(f"/users/{agent.json()['id']}/password-link", json={})
        link.raise_for_status()
        yield {"link": link.json()["url"], "agent_id": agent.json()["id"]}


def _new_case(server: Server, title: str) -> dict[str, object]:
    with server.api() as api:
        made = api.post(
            "/cases",
            json={
                "template": "question",
                "title": title,
                "customer": {"email": "cat@example.com", "name": "Cat"},
            },
        )
        made.raise_for_status()
        case: dict[str, object] = made.json()
        return case


async def _sign_in_as_agent(page: Page, server: Server, desk: dict[str, str]) -> None:
    await sign_in_by_link(page, server, desk["link"], AGENT, PASSWORD)


async def test_an_agent_works_a_case_from_the_list_to_solved(
    server: Server, desk: dict[str, str], page: Page
) -> None:
    case = _new_case(server, "Printer on fire")
    await _sign_in_as_agent(page, server, desk)
    await expect(page.get_by_role("heading", name="My open cases")).to_be_visible()
    await page.get_by_role("link", name=re.compile("All open cases")).click()
    await expect(page.get_by_role("link", name="Printer on fire")).to_be_visible()
    await screenshot(page, "case-list")
    await page.get_by_role("link", name="Printer on fire").click()
    await expect(
        page.get_by_role("heading", name=f"#{case['number']} Printer on fire")
    ).to_be_visible()

    await page.get_by_label("Reply", exact=True).fill("We are on our way with an extinguisher.")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator(".entry.public").last).to_contain_text("extinguisher")
    await page.get_by_label("Reply", exact=True).fill("Check whether the toner is the cause.")
    await page.get_by_label("Internal note for agents").check()
    await page.get_by_role("button", name="Send").click()
    note = page.locator(".entry.internal").last
    await expect(note).to_contain_text("toner")
    await expect(note).to_contain_text("Internal note")

    await page.get_by_role("button", name="Start work").click()
    await expect(page.locator(".facts .state")).to_have_text("Open")
    await page.get_by_label("Queue", exact=True).select_option("billing")
    await page.get_by_label("Assignee", exact=True).select_option(label="Alex Agent")
    await page.get_by_role("button", name="Transfer", exact=True).click()
    await expect(page.locator(".facts")).to_contain_text("billing")
    await expect(page.locator(".facts")).to_contain_text("Alex Agent")
    await screenshot(page, "case-page")
    await page.get_by_role("button", name="Solve").click()
    await expect(page.locator(".facts .state")).to_have_text("Solved")

    with server.api() as api:
        shown = api.get(f"/cases/{case['id']}").json()
    assert (shown["state"], shown["queue"], shown["assignee_id"]) == (
        "solved",
        "billing",
        desk["agent_id"],
    )
    assert [(c["body"][:5], c["public"]) for c in shown["comments"]] == [
        ("We ar", True),
        ("Check", False),
    ]


async def test_a_stale_change_is_refused_with_the_case_as_it_is_now(
    server: Server, desk: dict[str, str], browser: Browser
) -> None:
    case = _new_case(server, "Two agents, one case")
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    try:
        await _sign_in_as_agent(page, server, desk)
        await page.goto(f"{server.url}/app/cases/{case['number']}")
        # typing, so the page does not refresh by itself when the case changes
        await page.get_by_label("Reply", exact=True).fill("Let me take this one")
        with server.api() as api:
            api.post(f"/cases/{case['id']}/actions/start", json={}).raise_for_status()
        await page.get_by_role("button", name="Start work").click()
        await expect(page.get_by_role("alert")).to_contain_text("Someone changed this case")
        await expect(page.locator(".facts .state")).to_have_text("Open")
        await screenshot(page, "case-stale")
    finally:
        await context.close()


async def test_a_second_browser_sees_the_change_live(
    server: Server, desk: dict[str, str], browser: Browser
) -> None:
    case = _new_case(server, "Seen from two desks")
    watcher_context = await browser.new_context(locale="en-US")
    typist_context = await browser.new_context(locale="en-US")
    try:
        watcher, typist = await watcher_context.new_page(), await typist_context.new_page()
        await _sign_in_as_agent(watcher, server, desk)
        await _sign_in_as_agent(typist, server, desk)
        url = f"{server.url}/app/cases/{case['number']}"
        await watcher.goto(url)
        await typist.goto(url)
        await typist.get_by_label("Reply", exact=True).fill("Half-written answer")

        with server.api() as api:
            api.post(
                f"/cases/{case['id']}/comments", json={"body": "The customer wrote again"}
            ).raise_for_status()
        # the watcher's page shows it by itself; the typist keeps the draft and is told
        await expect(watcher.locator(".entry").last).to_contain_text(
            "The customer wrote again", timeout=15_000
        )
        banner = typist.get_by_role("status")
        await expect(banner).to_contain_text("This case changed", timeout=15_000)
        await expect(typist.get_by_label("Reply", exact=True)).to_have_value("Half-written answer")
        await screenshot(typist, "case-changed-while-typing")
        await banner.get_by_role("button", name="Show the changes").click()
        await expect(typist.locator(".entry").last).to_contain_text("The customer wrote again")
    finally:
        await watcher_context.close()
        await typist_context.close()


async def test_the_workbench_in_chinese_leaves_no_english(
    server: Server, desk: dict[str, str], browser: Browser
) -> None:
    """Every text the screens say (each entry of the catalog) is Chinese on the case list
    and the case page; what is left in Latin letters is the desk's own data, which the
    pages mark translate="no" (as browsers' translators expect)."""
    case = _new_case(server, "Printer jammed")
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    try:
        await _sign_in_as_agent(page, server, desk)
        for url, name in (
            (f"{server.url}/app/cases?view=open", "case-list-zh"),
            (f"{server.url}/app/cases/{case['number']}", "case-page-zh"),
        ):
            await page.goto(url)
            # what the desk itself holds (names, titles) is marked translate="no"
            shown = await shown_text(page)
            assert "工单" in shown
            left = english_in(shown)
            assert left == [], f"{url} still says {left}"
            await screenshot(page, name)
    finally:
        await context.close()


async def test_an_agent_finds_a_case_from_the_header_s_search_box(
    server: Server, desk: dict[str, str], browser: Browser
) -> None:
    """The server indexes in its own background work; the agent searches in Chinese, with
    the list in Chinese too, and sees where the words matched."""
    with server.api() as api:
        made = api.post(
            "/cases",
            json={
                "template": "question",
                "title": "Office printer",
                "description": "我的打印机着火了, the tray is smoking",
            },
        )
        made.raise_for_status()
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    try:
        await _sign_in_as_agent(page, server, desk)
        for _ in range(40):  # the index follows the case a moment later
            await page.goto(f"{server.url}/app/cases?view=mine")
            await page.get_by_role("search").get_by_role("searchbox").fill("打印机 tray")
            await page.keyboard.press("Enter")
            if await page.locator("table.cases mark").count():
                break
            await page.wait_for_timeout(250)
        row = page.locator("table.cases tbody tr", has_text="Office printer")
        await expect(row).to_be_visible()
        await expect(row.locator("mark").first).to_have_text("打印机")
        await expect(page.get_by_role("heading", name=re.compile("搜索结果"))).to_be_visible()
        left = english_in(await shown_text(page))
        assert left == [], f"the search results still say {left}"
        await screenshot(page, "case-search-zh")
        await page.get_by_role("search").get_by_role("searchbox").fill('"on fire')
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("alert")).to_contain_text("character")
    finally:
        await context.close()


async def test_the_case_list_is_walked_with_the_keyboard(
    server: Server, desk: dict[str, str], page: Page
) -> None:
    _new_case(server, "Walked first")
    _new_case(server, "Walked second")
    await _sign_in_as_agent(page, server, desk)
    await page.goto(f"{server.url}/app/cases?view=open&sort=-created")
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    await page.keyboard.press("k")
    await page.keyboard.press("j")
    chosen = page.locator("table.cases tbody tr[aria-current=true]")
    await expect(chosen).to_contain_text("Walked first")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=re.compile("Walked first"))).to_be_visible()


async def test_the_workbench_fits_a_phone(
    server: Server, desk: dict[str, str], browser: Browser
) -> None:
    """On a phone's width the list, the case page and the portal scroll down, never sideways."""
    case = _new_case(server, "Read on a phone")
    context = await browser.new_context(
        locale="en-US", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    try:
        await _sign_in_as_agent(page, server, desk)
        for url, name in (
            (f"{server.url}/app/cases?view=open", "case-list-phone"),
            (f"{server.url}/app/cases/{case['number']}", "case-page-phone"),
            (f"{server.url}/app/me", "me-phone"),
        ):
            await page.goto(url)
            wider = await page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            assert wider <= 1, f"{url} is {wider}px wider than the phone"
            await screenshot(page, name)
        await expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
    finally:
        await context.close()


async def test_a_viewer_sees_no_admin_screen_and_another_tenant_s_case_is_a_404(
    server: Server, desk: dict[str, str], page: Page
) -> None:
    viewer = "vera.viewer@demo.casedesk.local"
    with server.api() as api:
        made = api.post("/users", json={"email": viewer, "name": "Vera Viewer", "role": "viewer"})
        made.raise_for_status()
        link = api.post(f"/users/{made.json()['id']}/password-link", json={}).json()["url"]
        demo_numbers = [
            c["number"] for c in api.get("/cases", params={"limit": 200}).json()["items"]
        ]
    # another tenant, with more cases than the demo has: its newest number is none of demo's
    server.cli("tenant", "create", "elsewhere")
    server.cli(
        "user",
        "create",
        "--tenant",
        "elsewhere",
        "--email",
        "boss@elsewhere.test",
        "--role",
        "admin",
    )
    printed = server.cli(
        "apikey", "create", "--tenant", "elsewhere", "--user", "boss@elsewhere.test"
    )
    key = next(line.strip() for line in printed.splitlines() if line.startswith("cdk_"))
    with httpx.Client(
        base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as other:
        other.post("/queues", json={"code": "q", "name": "Q"}).raise_for_status()
        other.post("/state-machines", json=MACHINE | {"code": "m", "name": "M"}).raise_for_status()
        other.post("/state-machines/m/publish").raise_for_status()
        other.post(
            "/templates",
            json={
                "code": "t",
                "name": "T",
                "state_machine": "m",
                "default_queue": "q",
                "form_schema": {"type": "object"},
            },
        ).raise_for_status()
        number = 0
        while number <= max(demo_numbers, default=0):
            made_case = other.post("/cases", json={"template": "t", "title": "Their secret case"})
            made_case.raise_for_status()
            number = made_case.json()["number"]

    await sign_in_by_link(page, server, link, viewer, PASSWORD)
    await expect(page.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    answer = await page.goto(f"{server.url}/app/admin/queues")
    assert answer is not None
    assert answer.status == 403
    await expect(page.get_by_role("alert")).to_contain_text("admins")
    answer = await page.goto(f"{server.url}/app/cases/{number}")
    assert answer is not None
    assert answer.status == 404
    await expect(page.get_by_text("Their secret case")).to_have_count(0)
    await screenshot(page, "another-tenant-404")
