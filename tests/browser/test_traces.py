"""An admin reads the action trace in the browser: the list of calls, one call whose secrets
are shown only as "redacted", the HAR download; and the same screens in Chinese."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from casedesk.store.database import Database
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.traces import sql
from tests.browser.conftest import Server, english_in, screenshot, shown_text
from tests.integration.web.test_traces import SECRETS, _call
from tests.support.har import har_validator

ADMIN = "grace.traces@demo.casedesk.local"
PASSWORD = "the trace reader's password"


async def _sign_in(page: Page, server: Server, link: str) -> None:
    await page.goto(link)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("input[name=password_again]").fill(PASSWORD)
    await page.locator("main button[type=submit]").click()
    await page.locator("input[name=email]").fill(ADMIN)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("main button[type=submit]").click()
    await expect(page).to_have_url(f"{server.url}/app/cases?view=mine")


EXECUTION = f"exec-browser-{uuid.uuid4().hex[:8]}"
"""The execution of this test's calls: other tests' calls share the demo tenant."""


async def _recorded_calls(server: Server) -> str:
    """Calls of one execution of the demo tenant as the trace store keeps them; the id of
    the failed one."""
    with server.api() as api:
        tenant_id = uuid.UUID(api.get("/me").json()["tenant"]["id"])
    started = datetime.now(UTC) - timedelta(minutes=2)
    docs = [
        _call(tenant_id, started_at=started + timedelta(seconds=i), execution_id=EXECUTION)
        for i in range(3)
    ]
    failed = _call(
        tenant_id, started_at=started + timedelta(seconds=5), status=503, execution_id=EXECUTION
    )
    database = Database(server.env["CASEDESK_DATABASE_URL"])
    try:
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            await sql.write_batch(uow.session, [*docs, failed])
            await uow.commit()
    finally:
        await database.dispose()
    return str(failed["id"])


def _invite(server: Server) -> str:
    with server.api() as api:
        made = api.post("/users", json={"email": ADMIN, "name": "Grace Hopper", "role": "admin"})
        made.raise_for_status()
        link = api.post(f"/users/{made.json()['id']}/password-link", json={})
        link.raise_for_status()
    url: str = link.json()["url"]
    return url


async def test_an_admin_opens_a_redacted_call_and_downloads_the_har(
    server: Server, page: Page, browser: Browser
) -> None:
    failed = await _recorded_calls(server)
    await _sign_in(page, server, _invite(server))
    await page.get_by_role("link", name="Admin", exact=True).click()
    await page.get_by_role("link", name="Traces").click()
    await expect(page.get_by_role("heading", name="Third-party calls")).to_be_visible()
    await page.get_by_label("Execution").fill(EXECUTION)
    await page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.traces tbody tr")
    await expect(rows).to_have_count(4)
    await expect(rows.first).to_contain_text("503")

    await page.get_by_label("Outcome").select_option("5xx")
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(1)
    await rows.first.get_by_role("link").first.click()
    await expect(page).to_have_url(f"{server.url}/app/admin/traces/{failed}")
    marks = page.locator("mark.redacted")
    await expect(marks.first).to_have_text("redacted")
    assert await marks.count() >= 4
    shown = await page.locator("main").inner_text()
    assert not any(secret in shown for secret in SECRETS)
    await screenshot(page, "trace-call")

    await page.goto(f"{server.url}/app/admin/traces?execution={EXECUTION}")
    await expect(page.get_by_role("heading", name="Waterfall of the execution")).to_be_visible()
    await expect(page.locator("td.wf-bar")).to_have_count(4)
    await screenshot(page, "trace-waterfall")
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Download as HAR").click()
    download = await downloading.value
    assert download.suggested_filename == "casedesk-traces.har"
    har = json.loads(Path(await download.path()).read_text(encoding="utf-8"))
    har_validator().validate(har)
    assert len(har["log"]["entries"]) == 4

    # The same screens in Chinese: no English of the catalogs is left on them.
    context = await browser.new_context(locale="zh-CN")
    chinese = await context.new_page()
    try:
        await chinese.goto(f"{server.url}/sign-in?workspace=demo")
        await chinese.locator("input[name=email]").fill(ADMIN)
        await chinese.locator("input[name=password]").fill(PASSWORD)
        await chinese.locator("main button[type=submit]").click()
        await expect(chinese).to_have_url(re.compile(r"/app/cases\?view=mine$"))
        for url, name in (
            (f"{server.url}/app/admin/traces?execution={EXECUTION}", "traces-zh"),
            (f"{server.url}/app/admin/traces/{failed}", "trace-call-zh"),
        ):
            await chinese.goto(url)
            shown = await shown_text(chinese)
            assert "调用" in shown
            left = english_in(shown)
            assert left == [], (url, left)
            await screenshot(chinese, name)
    finally:
        await context.close()
