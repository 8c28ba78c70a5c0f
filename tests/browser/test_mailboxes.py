"""An admin adds a mailbox on the test dovecot in the browser, tests its connection and reads
the server's answer, polls it into a case; and the same screens in Chinese leave no English.

The template the mailbox's mail opens cases of is made through the API with the demo key."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import (
    Server,
    english_in,
    screenshot,
    shown_text,
    sign_in_by_link,
)
from tests.support.dovecot import Dovecot, message

ADMIN = "mona.mail@demo.casedesk.local"
PASSWORD = "the mailboxes admin's password"
MACHINE = {
    "code": "mail-flow",
    "name": "Mail flow",
    "states": [
        {"code": "new", "name": "New", "type": "start"},
        {"code": "done", "name": "Done", "type": "end"},
    ],
    "transitions": [{"action": "finish", "name": "Finish", "from": "new", "to": "done"}],
}


@pytest.fixture(scope="module")
def link(server: Server) -> str:
    """A template for mail's cases, and the mailboxes admin's one-time link."""
    with server.api() as api:
        api.post("/queues", json={"code": "mail-q", "name": "Mail"}).raise_for_status()
        api.post("/state-machines", json=MACHINE).raise_for_status()
        api.post("/state-machines/mail-flow/publish").raise_for_status()
        api.post(
            "/templates",
            json={
                "code": "mail-question",
                "name": "Mail question",
                "state_machine": "mail-flow",
                "default_queue": "mail-q",
            },
        ).raise_for_status()
        made = api.post("/users", json={"email": ADMIN, "name": "Mona Mail", "role": "admin"})
        made.raise_for_status()
        answer = api.post(f"/users/{made.json()['id']}/password-link", json={})
        answer.raise_for_status()
    return str(answer.json()["url"])


async def test_an_admin_adds_a_mailbox_and_tests_its_connection(
    server: Server, link: str, dovecot: Dovecot, page: Page, browser: Browser
) -> None:
    user = dovecot.fresh_user()
    dovecot.append(message("My parcel never came"), user=user)
    await sign_in_by_link(page, server, link, ADMIN, PASSWORD)
    await page.get_by_role("link", name="Admin", exact=True).click()
    await page.get_by_role("link", name="Mailboxes", exact=True).click()
    await expect(page.locator("main")).to_contain_text("No mailboxes yet.")
    await page.get_by_role("link", name="Add a mailbox").click()

    await page.get_by_label("Name", exact=True).fill("Parcels")
    await page.get_by_label("Address", exact=True).fill(user)
    await page.get_by_label("Host", exact=True).fill(dovecot.host)
    await page.get_by_label("Port", exact=True).fill(str(dovecot.port))
    await page.get_by_label("Security", exact=True).select_option("starttls")
    await page.get_by_label("Certificates to trust (PEM)").fill(dovecot.ca_file.read_text())
    await page.get_by_label("User name", exact=True).fill(user)
    await page.get_by_label("Password or access token").fill(dovecot.password)
    await page.get_by_label("Template of the cases mail opens").select_option("mail-question")
    await page.get_by_role("button", name="Add the mailbox").click()
    await expect(page.get_by_role("status")).to_have_text("The mailbox is added.")
    await expect(page.locator("#m-password-state")).to_contain_text("a password is set")
    await expect(page.locator("#m-password")).to_have_value("")

    await page.get_by_role("button", name="Test connection").click()
    answer = page.locator("#mailbox-test")
    await expect(answer).to_contain_text("The server took the login and opened the folder.")
    uidvalidity = dovecot.uidvalidity(user=user)
    await expect(answer).to_contain_text(str(uidvalidity))
    await expect(answer).to_contain_text("IMAP4rev1")
    await screenshot(page, "admin-mailbox-tested")

    await page.get_by_role("button", name="Poll now").click()
    # The server's own worker may have taken the mail in first (the mailbox is polled when
    # it is added, and watched with IDLE): the mail makes one case either way.
    polled = re.compile(r"^\s*Polled: [01] fetched, [01] taken in.\s*$")
    await expect(page.locator("#mailbox-poll")).to_have_text(polled)
    with server.api() as api:
        titles = [
            case["title"] for case in api.get("/cases", params={"limit": 100}).json()["items"]
        ]
    assert titles.count("My parcel never came") == 1
    await page.get_by_role("link", name="Back to the mailboxes").click()
    await expect(page.locator("table.mailboxes")).to_contain_text(user)
    assert dovecot.password not in await page.content()
    await screenshot(page, "admin-mailboxes")

    mailbox_path = f"/app/admin/mailboxes/{_mailbox_id(server)}"
    context = await browser.new_context(locale="zh-CN")
    chinese = await context.new_page()
    try:
        await sign_in_by_link(chinese, server, link, ADMIN, PASSWORD)
        for path in ("/app/admin/mailboxes", "/app/admin/mailboxes/new", mailbox_path):
            await chinese.goto(f"{server.url}{path}")
            shown = await shown_text(chinese)
            assert "邮箱" in shown, path
            left = english_in(shown)
            assert left == [], f"{path} still says {left}"
        await chinese.get_by_role("button", name="测试连接").click()
        await expect(chinese.locator("#mailbox-test")).to_contain_text(
            "服务器接受了登录并打开了文件夹。"
        )
        await expect(chinese.locator("#mailbox-test")).to_contain_text(str(uidvalidity))
        assert english_in(await shown_text(chinese)) == []
        await screenshot(chinese, "admin-mailbox-tested-zh")
    finally:
        await context.close()


def _mailbox_id(server: Server) -> str:
    with server.api() as api:
        listed = api.get("/mailboxes")
        listed.raise_for_status()
        [mailbox] = [m for m in listed.json()["items"] if m["name"] == "Parcels"]
    found = str(mailbox["id"])
    assert re.fullmatch(r"[0-9a-f-]{36}", found)
    return found
