"""The mailboxes API: admins keep them, the password is write-only, another tenant's is a 404;
``/test`` answers what the dovecot said over STARTTLS, IMAPS and plain IMAP, or its refusal."""

from __future__ import annotations

from typing import Any

from casedesk.domain.identity.roles import Role
from tests.conftest import Tenants
from tests.support.dovecot import message
from tests.support.mailboxes import MailDesk


async def test_create_read_change_delete_and_the_password_is_never_returned(
    mail_desk: MailDesk,
) -> None:
    created = await mail_desk.create()
    assert created["has_password"] is True
    assert "password" not in created
    assert mail_desk.dovecot.password not in str(created)
    assert created["folder"] == "INBOX"
    assert created["after_fetch"] == "leave"
    assert created["uidvalidity"] is None
    assert created["last_uid"] == 0

    url = f"/api/v1/mailboxes/{created['id']}"
    listed = await mail_desk.http.get("/api/v1/mailboxes", headers=mail_desk.headers)
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()["items"]] == [created["id"]]
    assert mail_desk.dovecot.password not in listed.text

    changed = await mail_desk.http.patch(
        url,
        json={"name": "Billing", "after_fetch": "seen", "poll_seconds": 300},
        headers=mail_desk.headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["after_fetch"], body["poll_seconds"]) == ("Billing", "seen", 300)
    assert body["has_password"] is True
    assert mail_desk.dovecot.password not in changed.text

    deleted = await mail_desk.http.delete(url, headers=mail_desk.headers)
    assert deleted.status_code == 204
    gone = await mail_desk.http.get(url, headers=mail_desk.headers)
    assert gone.status_code == 404


async def test_another_tenant_s_mailbox_is_not_found(mail_desk: MailDesk, tenants: Tenants) -> None:
    created = await mail_desk.create()
    other = await tenants.create()
    url = f"/api/v1/mailboxes/{created['id']}"
    http = mail_desk.http
    assert (await http.get(url, headers=other.headers)).status_code == 404
    patched = await http.patch(url, json={"name": "Mine"}, headers=other.headers)
    assert patched.status_code == 404
    assert (await http.delete(url, headers=other.headers)).status_code == 404
    assert (await http.post(f"{url}/test", headers=other.headers)).status_code == 404
    assert (await http.post(f"{url}/poll", headers=other.headers)).status_code == 404
    listed = await http.get("/api/v1/mailboxes", headers=other.headers)
    assert listed.json()["items"] == []
    assert (await mail_desk.read())["name"] == "Support"


async def test_agents_may_not_see_or_keep_mailboxes(mail_desk: MailDesk, tenants: Tenants) -> None:
    created = await mail_desk.create()
    agent = await tenants.member(mail_desk.desk.tenant.id, Role.AGENT)
    http = mail_desk.http
    assert (await http.get("/api/v1/mailboxes", headers=agent.headers)).status_code == 403
    url = f"/api/v1/mailboxes/{created['id']}"
    assert (await http.get(url, headers=agent.headers)).status_code == 403
    made = await http.post("/api/v1/mailboxes", json=mail_desk.settings(), headers=agent.headers)
    assert made.status_code == 403


async def _problem(mail_desk: MailDesk, body: dict[str, Any], status: int = 422) -> str:
    response = await mail_desk.http.post("/api/v1/mailboxes", json=body, headers=mail_desk.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.text


async def test_bad_settings_are_refused_naming_the_field(mail_desk: MailDesk) -> None:
    settings = mail_desk.settings
    assert "security" in await _problem(mail_desk, settings(security="ssl"))
    assert "move_to" in await _problem(mail_desk, settings(after_fetch="move"))
    assert "port" in await _problem(mail_desk, settings(port=70000))
    assert "template" in await _problem(mail_desk, settings(template="nope"))
    assert "queue" in await _problem(mail_desk, settings(queue="nope"))
    assert "address" in await _problem(mail_desk, settings(address="not an address"))
    assert "password" in await _problem(mail_desk, settings(password=""))
    created = await mail_desk.create()
    url = f"/api/v1/mailboxes/{created['id']}"
    patched = await mail_desk.http.patch(
        url, json={"after_fetch": "move"}, headers=mail_desk.headers
    )
    assert patched.status_code == 422
    assert "move_to" in patched.text
    nulled = await mail_desk.http.patch(url, json={"host": None}, headers=mail_desk.headers)
    assert nulled.status_code == 422
    assert "host" in nulled.text


async def test_starttls_imaps_and_plain_imap_connect(mail_desk: MailDesk) -> None:
    dovecot = mail_desk.dovecot
    mail_desk.append(message("Waiting"))
    for security, port in (("starttls", dovecot.port), ("tls", dovecot.tls_port)):
        await mail_desk.create(name=security, security=security, port=port)
        answer = await mail_desk.test()
        assert answer["ok"] is True, answer
        assert answer["error"] is None
        assert answer["messages"] == 1
        assert answer["uidvalidity"] == dovecot.uidvalidity(user=mail_desk.user)
        assert "IMAP4rev1" in answer["capabilities"]
        assert "MOVE" in answer["capabilities"]
    # Plain IMAP to this machine (loopback) is allowed; the server still offers STARTTLS.
    await mail_desk.create(name="plain", security="none", port=dovecot.port, tls_ca=None)
    answer = await mail_desk.test()
    assert answer["ok"] is True, answer
    assert answer["messages"] == 1


async def test_plain_imap_to_another_host_is_refused_before_connecting(
    mail_desk: MailDesk,
) -> None:
    await mail_desk.create(host="imap.example.com", security="none", tls_ca=None)
    answer = await mail_desk.test()
    assert answer["ok"] is False
    assert answer["error"].startswith("a plain (unencrypted) connection to imap.example.com")
    run = await mail_desk.poll()
    assert run["ok"] is False
    assert "unencrypted" in (await mail_desk.read())["last_error"]


async def test_an_untrusted_certificate_is_refused_unless_verification_is_off(
    mail_desk: MailDesk,
) -> None:
    dovecot = mail_desk.dovecot
    await mail_desk.create(security="tls", port=dovecot.tls_port, tls_ca=None)
    answer = await mail_desk.test()
    assert answer["ok"] is False
    assert "CERTIFICATE_VERIFY_FAILED" in answer["error"]
    await mail_desk.create(security="tls", port=dovecot.tls_port, tls_ca=None, tls_verify=False)
    assert (await mail_desk.test())["ok"] is True


async def test_a_wrong_password_is_the_test_s_answer_and_the_poll_s_last_error(
    mail_desk: MailDesk,
) -> None:
    await mail_desk.create(password="wrong")
    answer = await mail_desk.test()
    assert answer["ok"] is False
    assert answer["error"].startswith(f"LOGIN as {mail_desk.user}: the server answered NO")
    assert "AUTHENTICATIONFAILED" in answer["error"]

    run = await mail_desk.poll()
    assert run["ok"] is False
    assert "AUTHENTICATIONFAILED" in run["error"]
    state = await mail_desk.read()
    assert "AUTHENTICATIONFAILED" in state["last_error"]
    assert state["last_poll_at"] is not None

    fixed = await mail_desk.http.patch(
        f"/api/v1/mailboxes/{mail_desk.mailbox['id']}",
        json={"password": mail_desk.dovecot.password},
        headers=mail_desk.headers,
    )
    assert fixed.status_code == 200
    run = await mail_desk.poll()
    assert run["ok"] is True
    assert (await mail_desk.read())["last_error"] is None


async def test_a_closed_port_is_a_clear_error(mail_desk: MailDesk) -> None:
    await mail_desk.create(port=1)
    answer = await mail_desk.test()
    assert answer["ok"] is False
    assert answer["error"].startswith("connecting to 127.0.0.1:1: ConnectionRefusedError")


async def test_an_oauth2_access_token_logs_in_with_xoauth2(mail_desk: MailDesk) -> None:
    token = mail_desk.dovecot.access_token(mail_desk.user)
    created = await mail_desk.create(auth="xoauth2", password=token)
    assert created["has_password"] is True
    assert token not in str(created)
    mail_desk.append(message("Through OAuth2"))
    run = await mail_desk.poll()
    assert run["ok"], run
    assert [c["title"] for c in await mail_desk.cases()] == ["Through OAuth2"]

    await mail_desk.create(auth="xoauth2", password=token[:-4] + "AAAA")
    answer = await mail_desk.test()
    assert answer["ok"] is False
    assert answer["error"].startswith(f"AUTHENTICATE XOAUTH2 as {mail_desk.user}: the server")
    assert '"status":"401"' in answer["error"]
