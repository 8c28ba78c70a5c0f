"""The admins' mailbox screens over HTTP, against the test dovecot: the list with each
mailbox's last poll, a mailbox added (its problems named beside their fields, nothing
stored), changed with the password kept when its input is blank, tested and polled from
its page, deleted after a confirmation; the password in no page; not for agents; nothing of
another tenant."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.cases import Desk
from tests.support.dovecot import Dovecot, message
from tests.support.mailboxes import MailDesk
from tests.support.smtp_server import PASSWORD, USER, smtp_server
from tests.support.web import hidden, signed_in

# The pages run the activities and the poller the API runs, tested there on every database.
pytestmark = pytest.mark.backends("sqlite")


class Screens:
    """A signed-in admin of a desk with a mail user of its own on the dovecot."""

    def __init__(self, mail: MailDesk, csrf: str) -> None:
        self.mail, self.csrf = mail, csrf
        self.pages: list[str] = []

    @property
    def http(self) -> httpx.AsyncClient:
        return self.mail.http  # type: ignore[no-any-return]

    def form(self, **overrides: Any) -> dict[str, str]:
        """The new-mailbox form as a browser posts it: checkboxes ticked are "on"."""
        settings = self.mail.settings()
        typed = {
            name: str(settings[name])
            for name in (
                "name",
                "address",
                "host",
                "port",
                "security",
                "tls_ca",
                "username",
                "password",
                "template",
                "queue",
            )
        }
        typed |= {
            "auth": "password",
            "folder": "INBOX",
            "after_fetch": "leave",
            "move_to": "",
            "poll_seconds": "60",
            "tls_verify": "on",
            "enabled": "on",
        }
        typed |= overrides
        return {name: value for name, value in typed.items() if value is not None}

    async def get(self, path: str) -> httpx.Response:
        answer = await self.http.get(path)
        self.pages.append(answer.text)
        return answer

    async def post(self, path: str, **form: str) -> httpx.Response:
        answer = await self.http.post(path, data={"csrf_token": self.csrf} | form)
        self.pages.append(answer.text)
        return answer

    async def api_list(self) -> list[dict[str, Any]]:
        listed = await self.http.get("/api/v1/mailboxes", headers=self.mail.headers)
        assert listed.status_code == 200, listed.text
        items: list[dict[str, Any]] = listed.json()["items"]
        return items


@pytest.fixture
async def screens(desk: Desk, dovecot: Dovecot) -> Screens:
    await signed_in(desk.http, desk.tenant, desk.tenant.admin_id)
    page = await desk.http.get("/app/admin/mailboxes")
    assert page.status_code == 200, page.text
    return Screens(MailDesk(desk, dovecot, dovecot.fresh_user()), hidden(page.text, "csrf_token"))


def _problem(page: str, field: str) -> str:
    found = re.search(rf'id="m-{field}-problem"[^>]*>([^<]*)<', page)
    assert found is not None, f"no problem beside {field}"
    assert re.search(rf'id="m-{field}"[^>]*aria-invalid="true"', page), field
    return found.group(1)


async def test_the_list_shows_each_mailbox_s_last_poll_and_error(screens: Screens) -> None:
    empty = await screens.get("/app/admin/mailboxes")
    assert "No mailboxes yet." in empty.text
    assert 'href="/app/admin/mailboxes" aria-current="page"' in empty.text
    await screens.mail.create(name="Support desk")
    screens.mail.append(message("The printer is on fire"))
    screens.mail.append(message("And the scanner"))
    assert (await screens.mail.poll())["taken"] == 2
    broken = MailDesk(screens.mail.desk, screens.mail.dovecot, screens.mail.user)
    await broken.create(name="Old desk", password="not-the-password", folder="Archive")
    assert (await broken.poll())["ok"] is False

    listed = await screens.get("/app/admin/mailboxes")
    assert listed.status_code == 200
    rows = {
        name: row
        for row in re.findall(r"<tr>(.*?)</tr>", listed.text, re.S)
        for name in ("Support desk", "Old desk")
        if name in row
    }
    assert screens.mail.user in rows["Support desk"]
    assert "INBOX" in rows["Support desk"]
    assert "<time datetime=" in rows["Support desk"]
    assert re.search(r"<td>2</td>", rows["Support desk"])
    assert "Archive" in rows["Old desk"]
    assert re.search(r"<td>0</td>", rows["Old desk"])
    error = (await broken.read())["last_error"]
    assert error
    assert error.split(":")[0] in rows["Old desk"]
    assert screens.mail.dovecot.password not in listed.text


async def test_a_new_mailbox_s_problems_are_named_beside_their_fields(screens: Screens) -> None:
    refused = await screens.post(
        "/app/admin/mailboxes/new",
        **screens.form(address="not an address", port="nine", poll_seconds="5"),
    )
    assert refused.status_code == 422, refused.text
    assert "Nothing was saved:" in refused.text
    assert "pattern" in _problem(refused.text, "address")
    assert "integer" in _problem(refused.text, "port")
    assert "10" in _problem(refused.text, "poll_seconds")
    assert re.search(r'id="m-name"[^>]*value="Support"', refused.text)  # the typed text stays
    assert screens.mail.dovecot.password not in refused.text
    assert await screens.api_list() == []

    no_folder = await screens.post(
        "/app/admin/mailboxes/new", **screens.form(after_fetch="move", move_to="")
    )
    assert no_folder.status_code == 422
    assert "needs move_to" in _problem(no_folder.text, "move_to")
    unknown = await screens.post("/app/admin/mailboxes/new", **screens.form(template="nosuch"))
    assert unknown.status_code == 422
    assert "no template &#39;nosuch&#39;" in _problem(unknown.text, "template")
    assert await screens.api_list() == []

    made = await screens.post("/app/admin/mailboxes/new", **screens.form())
    assert made.status_code == 303, made.text
    [stored] = await screens.api_list()
    assert made.headers["location"] == f"/app/admin/mailboxes/{stored['id']}?done=created"
    assert (stored["name"], stored["security"], stored["queue"]) == (
        "Support",
        "starttls",
        "support",
    )
    assert stored["has_password"] is True
    shown = await screens.get(made.headers["location"])
    assert "The mailbox is added." in shown.text
    assert "a password is set" in shown.text
    assert all(screens.mail.dovecot.password not in page for page in screens.pages)


async def test_a_change_keeps_the_password_when_its_input_is_blank(screens: Screens) -> None:
    made = await screens.mail.create()
    path = f"/app/admin/mailboxes/{made['id']}"
    page = await screens.get(path)
    assert re.search(r'id="m-password" name="password" type="password" value=""', page.text)
    assert "a password is set" in page.text

    changed = await screens.post(
        path, **screens.form(name="Billing", password="", after_fetch="seen")
    )
    assert changed.status_code == 303, changed.text
    read = await screens.mail.read()
    assert (read["name"], read["after_fetch"], read["has_password"]) == ("Billing", "seen", True)
    tested = await screens.post(f"{path}/test")
    assert "The server took the login and opened the folder." in tested.text, re.findall(
        r'role="alert">(.*?)</p>', tested.text, re.S
    )  # the same password

    refused = await screens.post(path, **screens.form(name=" ", password=""))
    assert refused.status_code == 422
    assert _problem(refused.text, "name")
    assert (await screens.mail.read())["name"] == "Billing"

    await screens.post(path, **screens.form(password="a-new-password"))
    failed = await screens.post(f"{path}/test")
    assert "The test failed:" in failed.text  # the new password is the one used
    assert all(screens.mail.dovecot.password not in page for page in screens.pages)
    assert all("a-new-password" not in page for page in screens.pages)
    await screens.post(path, **screens.form(port="", security="tls"))
    assert (await screens.mail.read())["port"] == 993  # a blank port: the security's default


async def test_test_connection_and_poll_now_show_the_server_s_answer(screens: Screens) -> None:
    made = await screens.mail.create()
    path = f"/app/admin/mailboxes/{made['id']}"
    screens.mail.append(message("Where is my parcel?"))
    tested = await screens.post(f"{path}/test")
    assert tested.status_code == 200, tested.text
    answer = re.search(r'id="mailbox-test">(.*?)</div>', tested.text, re.S)
    assert answer is not None
    shown = answer.group(1)
    uidvalidity = screens.mail.dovecot.uidvalidity(user=screens.mail.user)
    assert f'<dt>UIDVALIDITY</dt><dd translate="no">{uidvalidity}</dd>' in shown
    assert "<dt>Messages</dt><dd>1</dd>" in shown
    assert "IMAP4rev1" in shown

    polled = await screens.post(f"{path}/poll")
    assert "Polled: 1 fetched, 1 taken in." in polled.text
    assert "1 taken in" in polled.text
    [case] = await screens.mail.cases()
    assert case["title"] == "Where is my parcel?"
    outcome = re.search(
        r'class="cases mailbox-outcomes">.*?<tbody>(.*?)</tbody>', polled.text, re.S
    )
    assert outcome is not None
    assert "opened a case" in outcome.group(1)
    assert f'href="/app/cases/{case["number"]}"' in outcome.group(1)

    token = screens.mail.dovecot.access_token(screens.mail.user)
    await screens.post(path, **screens.form(auth="xoauth2", password=token))
    assert (await screens.mail.read())["auth"] == "xoauth2"
    by_token = await screens.post(f"{path}/test")
    assert "The server took the login and opened the folder." in by_token.text
    assert token not in by_token.text

    await screens.post(path, **screens.form(port=str(screens.mail.dovecot.tls_port)))
    wrong = await screens.post(f"{path}/test")
    assert "The test failed:" in wrong.text
    assert re.search(r'role="alert">The test failed: <span translate="no">[^<]+</span>', wrong.text)

    await screens.post(path, **screens.form(enabled=None))
    idle = await screens.post(f"{path}/poll")
    assert "The mailbox is disabled: it was not polled." in idle.text


async def test_a_mailbox_is_deleted_after_a_confirmation(screens: Screens) -> None:
    made = await screens.mail.create(name="To go")
    path = f"/app/admin/mailboxes/{made['id']}"
    confirm = await screens.get(f"{path}/delete")
    assert confirm.status_code == 200
    assert "To go" in confirm.text
    assert "Delete the mailbox" in confirm.text
    assert len(await screens.api_list()) == 1  # asking is not deleting
    deleted = await screens.post(f"{path}/delete")
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/app/admin/mailboxes?done=deleted"
    assert "The mailbox is deleted." in (await screens.get(deleted.headers["location"])).text
    assert await screens.api_list() == []
    assert (await screens.get(path)).status_code == 404


async def test_another_tenant_s_mailbox_is_not_found(screens: Screens, tenants: Tenants) -> None:
    other = await tenants.create()
    theirs = MailDesk(screens.mail.desk, screens.mail.dovecot, screens.mail.user)
    theirs_body = theirs.settings(template="question", queue=None)
    # The other tenant has no template: make one through its own API.
    await screens.mail.desk.http.post(
        "/api/v1/state-machines",
        json={
            "code": "m",
            "name": "M",
            "states": [
                {"code": "new", "name": "New", "type": "start"},
                {"code": "done", "name": "Done", "type": "end"},
            ],
            "transitions": [{"action": "end", "name": "End", "from": "new", "to": "done"}],
        },
        headers=other.headers,
    )
    await screens.http.post("/api/v1/state-machines/m/publish", headers=other.headers)
    await screens.http.post(
        "/api/v1/queues", json={"code": "q", "name": "Q"}, headers=other.headers
    )
    template = await screens.http.post(
        "/api/v1/templates",
        json={"code": "question", "name": "Q", "state_machine": "m", "default_queue": "q"},
        headers=other.headers,
    )
    assert template.status_code == 201, template.text
    made = await screens.http.post("/api/v1/mailboxes", json=theirs_body, headers=other.headers)
    assert made.status_code == 201, made.text
    path = f"/app/admin/mailboxes/{made.json()['id']}"
    for where in (path, f"{path}/delete", "/app/admin/mailboxes/not-an-id"):
        assert (await screens.get(where)).status_code == 404, where
    for where, form in (
        (path, screens.form(name="Mine")),
        (f"{path}/test", {}),
        (f"{path}/poll", {}),
        (f"{path}/delete", {}),
    ):
        assert (await screens.post(where, **form)).status_code == 404, where
    listed = await screens.get("/app/admin/mailboxes")
    assert made.json()["id"] not in listed.text
    still = await screens.http.get(f"/api/v1/mailboxes/{made.json()['id']}", headers=other.headers)
    assert still.json()["name"] == "Support"


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
async def test_the_screens_are_not_for_agents_or_viewers(
    desk: Desk, dovecot: Dovecot, tenants: Tenants, role: Role
) -> None:
    mail = MailDesk(desk, dovecot, dovecot.fresh_user())
    made = await mail.create()
    member = await tenants.member(desk.tenant.id, role)
    await signed_in(desk.http, desk.tenant, member.id)
    csrf = hidden((await desk.http.get("/app/cases?view=open")).text, "csrf_token")
    path = f"/app/admin/mailboxes/{made['id']}"
    for where in ("/app/admin/mailboxes", "/app/admin/mailboxes/new", path, f"{path}/delete"):
        assert (await desk.http.get(where)).status_code == 403, where
    for where in ("/app/admin/mailboxes/new", path, f"{path}/test", f"{path}/poll"):
        posted = await desk.http.post(where, data={"csrf_token": csrf, "name": "Mine"})
        assert posted.status_code == 403, where
    assert (await desk.http.post(f"{path}/delete", data={"csrf_token": csrf})).status_code == 403
    assert (await mail.read())["name"] == "Support"
    nav = await desk.http.get("/app/cases?view=open")
    assert "/app/admin/mailboxes" not in nav.text


async def test_the_outgoing_server_is_set_and_tested_on_the_page(
    screens: Screens, tmp_path: Path
) -> None:
    with smtp_server(tmp_path, mode="starttls") as smtp:
        both = screens.mail.dovecot.ca_file.read_text() + "\n" + smtp.ca_pem
        outgoing = {
            "tls_ca": both,
            "smtp_host": "127.0.0.1",
            "smtp_port": str(smtp.port),
            "smtp_security": "starttls",
            "smtp_username": USER,
            "smtp_password": PASSWORD,
            "from_name": "Acme Support",
            "acknowledge": "on",
        }
        made = await screens.post("/app/admin/mailboxes/new", **screens.form(**outgoing))
        assert made.status_code in (200, 303), made.text
        (stored,) = await screens.api_list()
        assert stored["smtp_host"] == "127.0.0.1"
        assert stored["has_smtp_password"] is True
        assert stored["acknowledge"] is True
        path = f"/app/admin/mailboxes/{stored['id']}"
        page = await screens.get(path)
        assert 'name="smtp_host" value="127.0.0.1"' in page.text
        tested = await screens.post(f"{path}/test")
        assert "The outgoing server took the login." in tested.text
        kept = await screens.post(path, **screens.form(**outgoing | {"smtp_password": ""}))
        assert kept.status_code in (200, 303)
        assert "The outgoing server took the login." in (await screens.post(f"{path}/test")).text
        wrong = await screens.post(path, **screens.form(**outgoing | {"smtp_password": "nope"}))
        assert wrong.status_code in (200, 303)
        refused = await screens.post(f"{path}/test")
        assert "The outgoing server refused:" in refused.text
        assert all(PASSWORD not in p and "nope" not in p for p in screens.pages)


async def test_the_form_chooses_whether_the_mail_already_in_the_folder_is_imported(
    screens: Screens,
) -> None:
    page = await screens.get("/app/admin/mailboxes/new")
    assert re.search(r'<option value="import" selected>', page.text)
    made = await screens.post("/app/admin/mailboxes/new", **screens.form(existing_mail="skip"))
    assert made.status_code == 303, made.text
    (mailbox,) = await screens.api_list()
    assert mailbox["existing_mail"] == "skip"
    edit = await screens.get(f"/app/admin/mailboxes/{mailbox['id']}")
    assert re.search(r'<option value="skip" selected>', edit.text)


async def test_the_mailbox_that_sends_the_desk_s_mail_is_ticked_on_the_page(
    screens: Screens, tmp_path: Path
) -> None:
    without = await screens.post("/app/admin/mailboxes/new", **screens.form(notifications="on"))
    assert without.status_code == 422
    assert "needs an outgoing (SMTP) server" in _problem(without.text, "notifications")
    assert await screens.api_list() == []
    with smtp_server(tmp_path, mode="starttls") as smtp:
        outgoing = {
            "tls_ca": screens.mail.dovecot.ca_file.read_text() + "\n" + smtp.ca_pem,
            "smtp_host": "127.0.0.1",
            "smtp_port": str(smtp.port),
            "notifications": "on",
        }
        made = await screens.post("/app/admin/mailboxes/new", **screens.form(**outgoing))
        assert made.status_code in (200, 303), made.text
        (stored,) = await screens.api_list()
        assert stored["notifications"] is True
        page = await screens.get(f"/app/admin/mailboxes/{stored['id']}")
        assert re.search(r'name="notifications"[^>]*checked', page.text)
        unticked = {name: value for name, value in outgoing.items() if name != "notifications"}
        saved = await screens.post(
            f"/app/admin/mailboxes/{stored['id']}", **screens.form(**unticked)
        )
        assert saved.status_code in (200, 303)
        (stored,) = await screens.api_list()
        assert stored["notifications"] is False
