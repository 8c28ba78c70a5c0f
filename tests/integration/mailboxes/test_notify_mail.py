"""The tenant's own mail, out through the mailbox chosen for it (aiosmtpd on loopback):
invitations and password resets, the self-service "forgot your password", portal sign-in
links and "solved" with the rating link; and what stays as it was without such a mailbox."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select, update

from casedesk.activities.notify_mail import NOTIFY
from casedesk.bootstrap import Container, job_handlers
from casedesk.kit.clock import utcnow
from casedesk.store.models import OneTimeLink, OutboxEvent, ScheduledJob
from casedesk.worker.case_mail import CaseMail
from casedesk.worker.consumers import ConsumerGroup, Consumers
from casedesk.worker.relay import to_message
from casedesk.worker.scheduler import Scheduler
from tests.conftest import Tenants
from tests.support.cases import Desk, make_desk
from tests.support.delivery import delivering_to
from tests.support.dovecot import message
from tests.support.instant import run_due_now
from tests.support.mailboxes import MailDesk
from tests.support.smtp_server import PASSWORD, USER, SmtpTestServer, smtp_server
from tests.support.web import PASSWORD as WEB_PASSWORD
from tests.support.web import hidden, set_password, sign_in, signed_in


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpTestServer]:
    with smtp_server(tmp_path, mode="starttls") as server:
        yield server


def _outgoing(mail_desk: MailDesk, smtp: SmtpTestServer, **overrides: Any) -> dict[str, Any]:
    settings = {
        "tls_ca": mail_desk.dovecot.ca_file.read_text() + "\n" + smtp.ca_pem,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_security": "starttls",
        "smtp_username": USER,
        "smtp_password": PASSWORD,
        "from_name": "Acme Support",
        "notifications": True,
    }
    settings.update(overrides)
    return settings


def _mail(smtp: SmtpTestServer, index: int = -1) -> EmailMessage:
    parsed = email.message_from_bytes(smtp.messages[index].content, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _text(sent: EmailMessage) -> str:
    body = sent.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def _link(sent: EmailMessage, marker: str) -> str:
    """The path of the mail's link that has ``marker`` in it."""
    found = re.search(rf"https?://\S*{re.escape(marker)}\S*", _text(sent))
    assert found is not None, _text(sent)
    parts = urlsplit(found.group(0))
    query = f"?{parts.query}" if parts.query else ""
    return parts.path + query + (f"#{parts.fragment}" if parts.fragment else "")


async def _send(container: Container, mail_desk: MailDesk) -> None:
    await run_due_now(container, mail_desk.desk.tenant.id, NOTIFY)


async def _new_user(mail_desk: MailDesk, address: str) -> dict[str, Any]:
    made = await mail_desk.http.post(
        "/api/v1/users",
        json={"email": address, "name": "Dee Park", "role": "agent"},
        headers=mail_desk.headers,
    )
    assert made.status_code == 201, made.text
    user: dict[str, Any] = made.json()
    return user


async def _password_link(mail_desk: MailDesk, user_id: str) -> dict[str, Any]:
    made = await mail_desk.http.post(
        f"/api/v1/users/{user_id}/password-link", json={}, headers=mail_desk.headers
    )
    assert made.status_code == 201, made.text
    answer: dict[str, Any] = made.json()
    return answer


async def test_one_mailbox_sends_the_tenant_s_mail_and_it_needs_an_outgoing_server(
    mail_desk: MailDesk, smtp: SmtpTestServer, tenants: Tenants
) -> None:
    first = await mail_desk.create(**_outgoing(mail_desk, smtp, name="First"))
    assert first["notifications"] is True
    second = await mail_desk.create(**_outgoing(mail_desk, smtp, name="Second"))
    listed = await mail_desk.http.get("/api/v1/mailboxes", headers=mail_desk.headers)
    chosen = {m["name"]: m["notifications"] for m in listed.json()["items"]}
    assert chosen == {"First": False, "Second": True}

    back = await mail_desk.http.patch(
        f"/api/v1/mailboxes/{first['id']}", json={"notifications": True}, headers=mail_desk.headers
    )
    assert back.status_code == 200, back.text
    listed = await mail_desk.http.get("/api/v1/mailboxes", headers=mail_desk.headers)
    chosen = {m["name"]: m["notifications"] for m in listed.json()["items"]}
    assert chosen == {"First": True, "Second": False}

    without = await mail_desk.http.post(
        "/api/v1/mailboxes",
        json=mail_desk.settings(name="Third", notifications=True),
        headers=mail_desk.headers,
    )
    assert without.status_code == 422
    assert "notifications" in without.text
    assert "outgoing (SMTP) server" in without.text
    cleared = await mail_desk.http.patch(
        f"/api/v1/mailboxes/{first['id']}", json={"smtp_host": None}, headers=mail_desk.headers
    )
    assert cleared.status_code == 422
    assert "notifications" in cleared.text

    # Another tenant choosing its own mailbox leaves this tenant's choice alone.
    other = await make_desk(mail_desk.http, await tenants.create(), mail_desk.desk.container)
    theirs = await mail_desk.http.post(
        "/api/v1/mailboxes",
        json=mail_desk.settings(name="Theirs") | _outgoing(mail_desk, smtp),
        headers=other.headers,
    )
    assert theirs.status_code == 201, theirs.text
    listed = await mail_desk.http.get("/api/v1/mailboxes", headers=mail_desk.headers)
    assert [m["name"] for m in listed.json()["items"] if m["notifications"]] == ["First"]
    assert second["id"] != first["id"]


async def test_an_invitation_is_mailed_and_its_link_sets_the_password(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container, client: httpx.AsyncClient
) -> None:
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    user = await _new_user(mail_desk, "dee@example.net")
    answer = await _password_link(mail_desk, user["id"])
    assert answer["sent"] is True
    assert answer["url"] is None
    assert answer["purpose"] == "invite"
    assert smtp.messages == []  # not before the job runs

    await _send(container, mail_desk)
    (received,) = smtp.messages
    assert received.rcpt_tos == ["dee@example.net"]
    assert received.mail_from == mail_desk.user
    sent = _mail(smtp)
    tenant = mail_desk.desk.tenant
    assert sent["Subject"] == f"admin invited you to {tenant.slug}"
    assert sent["Auto-Submitted"] == "auto-generated"
    assert sent["Message-ID"].endswith(f"@{mail_desk.user.rpartition('@')[2]}>")
    assert sent["To"] == "Dee Park <dee@example.net>"
    path = _link(sent, "/set-password/")
    assert (await set_password(client, path)).status_code == 303
    signed = await sign_in(client, tenant.slug, "dee@example.net")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/app"
    workbench = await client.get("/app", follow_redirects=True)
    assert workbench.status_code == 200
    assert "Sign in to casedesk" not in workbench.text


async def test_without_a_sending_mailbox_the_link_is_shown_and_nothing_is_sent(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container, tenants: Tenants
) -> None:
    # A mailbox with an outgoing server that is not chosen for the tenant's mail, and
    # another tenant's chosen one: neither sends this tenant's invitation.
    await mail_desk.create(**_outgoing(mail_desk, smtp, notifications=False))
    user = await _new_user(mail_desk, "eli@example.net")
    answer = await _password_link(mail_desk, user["id"])
    assert answer["sent"] is False
    assert "/set-password/" in answer["url"]
    await _send(container, mail_desk)
    assert smtp.messages == []


async def test_another_tenant_s_mailbox_is_never_used(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container, tenants: Tenants
) -> None:
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    other = await tenants.create()
    made = await mail_desk.http.post(
        "/api/v1/users",
        json={"email": "fin@example.net", "name": "Fin", "role": "agent"},
        headers=other.headers,
    )
    assert made.status_code == 201
    link = await mail_desk.http.post(
        f"/api/v1/users/{made.json()['id']}/password-link", json={}, headers=other.headers
    )
    assert link.json()["sent"] is False
    assert link.json()["url"]
    await run_due_now(container, other.id, NOTIFY)
    await _send(container, mail_desk)
    assert smtp.messages == []


async def test_the_users_screen_says_where_a_link_was_mailed(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container, client: httpx.AsyncClient
) -> None:
    tenant = mail_desk.desk.tenant
    await signed_in(client, tenant, tenant.admin_id)
    page = await client.get("/app/admin/users")
    assert "Mail is not configured" in page.text
    csrf = hidden(page.text, "csrf_token")
    shown = await client.post(
        "/app/admin/users",
        data={"csrf_token": csrf, "name": "Gil", "email": "gil@example.net", "role": "agent"},
    )
    assert shown.status_code == 201
    assert "/set-password/" in shown.text
    assert "Mail is not configured" in shown.text

    await mail_desk.create(**_outgoing(mail_desk, smtp))
    invited = await client.post(
        "/app/admin/users",
        data={"csrf_token": csrf, "name": "Hal", "email": "hal@example.net", "role": "agent"},
    )
    assert invited.status_code == 201
    assert "We sent the link to hal@example.net" in invited.text
    assert "/set-password/" not in invited.text
    users = (await client.get("/api/v1/users", headers=tenant.headers)).json()["items"]
    (gil,) = [u for u in users if u["email"] == "gil@example.net"]
    reset = await client.post(
        f"/app/admin/users/{gil['id']}/password-link", data={"csrf_token": csrf}
    )
    assert reset.status_code == 201
    assert "We sent the link to gil@example.net" in reset.text
    await _send(container, mail_desk)
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["gil@example.net", "hal@example.net"]


async def _forgot(client: httpx.AsyncClient, workspace: str, address: str) -> httpx.Response:
    form = await client.get(f"/sign-in/forgot?workspace={workspace}")
    assert form.status_code == 200
    return await client.post(
        "/sign-in/forgot",
        data={
            "form_token": hidden(form.text, "form_token"),
            "workspace": workspace,
            "email": address,
        },
    )


def _answer(page: httpx.Response, address: str) -> str:
    """The page without what the visitor typed: what it tells them."""
    return page.text.replace(address, "ADDRESS").split('name="form_token" value="')[0]


async def test_forgot_password_mails_a_reset_and_tells_nothing_of_unknown_addresses(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container, client: httpx.AsyncClient
) -> None:
    tenant = mail_desk.desk.tenant
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    user = await _new_user(mail_desk, "ivy@example.net")
    first = await _password_link(mail_desk, user["id"])  # the invitation
    await _send(container, mail_desk)
    assert (await set_password(client, _link(_mail(smtp), "/set-password/"))).status_code == 303
    assert first["sent"] is True
    smtp.messages.clear()
    await _links_made_earlier(container, mail_desk)

    sign_in_page = await client.get(f"/sign-in?workspace={tenant.slug}")
    assert "/sign-in/forgot" in sign_in_page.text
    unknown = await _forgot(client, tenant.slug, "nobody@example.net")
    await _send(container, mail_desk)
    assert smtp.messages == []
    known = await _forgot(client, tenant.slug, "Ivy@Example.net")
    assert known.status_code == unknown.status_code == 200
    assert _answer(known, "Ivy@Example.net") == _answer(unknown, "nobody@example.net")
    assert "a link to choose a new password is on its way" in known.text
    await _send(container, mail_desk)
    (received,) = smtp.messages
    assert received.rcpt_tos == ["ivy@example.net"]
    sent = _mail(smtp)
    assert sent["Subject"] == f"Choose a new password for {tenant.slug}"
    assert sent["Auto-Submitted"] == "auto-generated"

    again = await _forgot(client, tenant.slug, "ivy@example.net")  # within a minute
    assert _answer(again, "ivy@example.net") == _answer(unknown, "nobody@example.net")
    await _send(container, mail_desk)
    assert len(smtp.messages) == 1, "one reset a minute for an address"
    elsewhere = await _forgot(client, "no-such-workspace", "ivy@example.net")
    assert elsewhere.status_code == 200

    path = _link(sent, "/set-password/")
    assert (await set_password(client, path, "another good passphrase")).status_code == 303
    signed = await sign_in(client, tenant.slug, "ivy@example.net", "another good passphrase")
    assert signed.status_code == 303
    client.cookies.clear()
    old = await sign_in(client, tenant.slug, "ivy@example.net", WEB_PASSWORD)
    assert old.status_code == 401


async def _links_made_earlier(container: Container, mail_desk: MailDesk) -> None:
    """The tenant's password links as if made ten minutes ago (past the reset throttle)."""
    async with container.unit_of_work(mail_desk.desk.tenant.id) as uow:
        await uow.begin_write()
        await uow.session.execute(
            update(OneTimeLink).values(created_at=utcnow() - timedelta(minutes=10))
        )
        await uow.commit()


async def test_forgot_password_without_a_sending_mailbox_sends_nothing(
    mail_desk: MailDesk, container: Container, client: httpx.AsyncClient
) -> None:
    tenant = mail_desk.desk.tenant
    await mail_desk.create()
    await _new_user(mail_desk, "jo@example.net")
    page = await _forgot(client, tenant.slug, "jo@example.net")
    assert page.status_code == 200
    async with container.unit_of_work(tenant.id) as uow:
        jobs = await uow.session.scalars(select(ScheduledJob).where(ScheduledJob.kind == NOTIFY))
        assert list(jobs) == []


async def _ask_portal(client: httpx.AsyncClient, workspace: str, address: str) -> httpx.Response:
    page = await client.get(f"/portal/{workspace}")
    return await client.post(
        f"/portal/{workspace}/sign-in",
        data={"form_token": hidden(page.text, "form_token"), "email": address},
    )


async def _spend(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """The link page, and its one button pressed (the form as the browser posts it)."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    form = {"form_token": hidden(page.text, "form_token")}
    if 'name="next"' in page.text:
        form["next"] = hidden(page.text, "next")
    return await client.post(path.partition("?")[0], data=form)


async def test_a_portal_sign_in_link_is_mailed_and_signs_in(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container, client: httpx.AsyncClient
) -> None:
    tenant = mail_desk.desk.tenant
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    asked = await _ask_portal(client, tenant.slug, "kim@example.net")
    assert asked.status_code == 200
    assert "Check your mail" in asked.text
    assert "/link/" not in asked.text, "the link is mailed, not shown"
    await _send(container, mail_desk)
    (received,) = smtp.messages
    assert received.rcpt_tos == ["kim@example.net"]
    sent = _mail(smtp)
    assert sent["Subject"] == f"Your sign-in link for {tenant.slug}"
    assert sent["Auto-Submitted"] == "auto-generated"
    spent = await _spend(client, _link(sent, f"/portal/{tenant.slug}/link/"))
    assert spent.status_code == 303
    assert (await client.get(f"/portal/{tenant.slug}/cases")).status_code == 200


async def test_a_busy_server_is_tried_again_and_a_refusal_is_final(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container, client: httpx.AsyncClient
) -> None:
    tenant = mail_desk.desk.tenant
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    await _ask_portal(client, tenant.slug, "busy-450@example.net")
    await _ask_portal(client, tenant.slug, "refuse-550@example.net")
    scheduler = Scheduler(container.database, {NOTIFY: job_handlers(container)[NOTIFY]})
    while await scheduler.run_once():
        pass
    async with container.unit_of_work(tenant.id) as uow:
        jobs = list(
            await uow.session.scalars(select(ScheduledJob).where(ScheduledJob.kind == NOTIFY))
        )
    outcome = {job.payload["to"]["address"]: job for job in jobs}
    busy, refused = outcome["busy-450@example.net"], outcome["refuse-550@example.net"]
    assert (busy.status, busy.attempts) == ("pending", 1), "a 4xx is tried again later"
    assert "450" in (busy.last_error or "")
    assert refused.status == "done", "a 5xx is final: logged, not retried"
    assert refused.last_error is None
    assert smtp.messages == []
    assert "link_sealed" in busy.payload
    assert "/link/" not in str(busy.payload), "the link is sealed in the job"


async def test_a_solved_case_is_mailed_once_per_solve_with_its_rating_link(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container, client: httpx.AsyncClient
) -> None:
    desk = mail_desk.desk
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    made = await desk.create_case(customer={"email": "lee@example.net", "name": "Lee"})
    assert made.status_code == 201, made.text
    case = made.json()
    group = CaseMail(
        container.database, container.box, base_url=container.settings.external_url
    ).group()
    async with delivering_to(container, group) as settle:
        assert (await desk.act(case["id"], "solve")).status_code == 200
        await settle()
        await _send(container, mail_desk)
        (received,) = smtp.messages
        assert received.rcpt_tos == ["lee@example.net"]
        sent = _mail(smtp)
        assert sent["Subject"] == f"Your request is solved: {case['title']} [#{case['number']}]"
        assert sent["Auto-Submitted"] == "auto-generated"
        rating = _link(sent, "/cases/")
        assert rating == f"/portal/{desk.tenant.slug}/cases/{case['number']}#rate"

        # The same event delivered again sends nothing more.
        await _redeliver(container, group, desk, case["id"])
        await _send(container, mail_desk)
        assert len(smtp.messages) == 1

        # Reopened and solved again: a second mail.
        assert (await desk.act(case["id"], "reopen")).status_code == 200
        assert (await desk.act(case["id"], "close")).status_code == 200
        await settle()
        await _send(container, mail_desk)
        assert len(smtp.messages) == 2

    # Followed by a customer not signed in: sign in by mail, then back at the rating form.
    smtp.messages.clear()
    case_path = rating.partition("#")[0]
    away = await client.get(case_path)
    assert away.status_code == 303
    assert away.headers["location"] == f"/portal/{desk.tenant.slug}?next={case_path}"
    sign_in_page = await client.get(away.headers["location"])
    assert hidden(sign_in_page.text, "next") == case_path
    for elsewhere in ("//evil.example/x", "/app", f"/portal/{desk.tenant.slug}/sign-out"):
        other = await client.get(f"/portal/{desk.tenant.slug}", params={"next": elsewhere})
        assert 'name="next"' not in other.text, "only the portal's case pages"
    asked = await client.post(
        f"/portal/{desk.tenant.slug}/sign-in",
        data={
            "form_token": hidden(sign_in_page.text, "form_token"),
            "email": "lee@example.net",
            "next": case_path,
        },
    )
    assert "Check your mail" in asked.text
    await _send(container, mail_desk)
    link = _link(_mail(smtp), "/link/")
    spent = await _spend(client, link)
    assert spent.status_code == 303
    assert spent.headers["location"] == case_path
    page = await client.get(case_path)
    assert page.status_code == 200
    assert 'id="rate"' in page.text
    assert 'name="score"' in page.text


async def _redeliver(container: Container, group: ConsumerGroup, desk: Desk, case_id: str) -> None:
    """The case's latest ``case.closed`` handed to the group once more, as a broker does
    after a lost acknowledgement; then straight to its handler, past the group's record of
    processed events: the job's key still holds."""
    async with container.unit_of_work(desk.tenant.id) as uow:
        row = await uow.session.scalar(
            select(OutboxEvent)
            .where(OutboxEvent.subject_id == uuid.UUID(case_id), OutboxEvent.type == "case.closed")
            .order_by(OutboxEvent.id.desc())
            .limit(1)
        )
    assert row is not None
    delivered = to_message(row).retried()
    handler = Consumers(container.database, {group.name: group}).handler_for(group.name)
    assert handler is not None
    await handler(delivered)
    async with container.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        await group.handler(delivered, uow)
        await uow.commit()


async def test_a_mail_case_is_told_solved_in_its_thread_through_its_mailbox(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    # The case's mailbox sends; no mailbox is chosen for the tenant's mail.
    await mail_desk.create(**_outgoing(mail_desk, smtp, notifications=False))
    first = f"{uuid.uuid4().hex}@example.net"
    mail_desk.append(message("Printer on fire", message_id=f"<{first}>"))
    await mail_desk.poll()
    (case,) = await mail_desk.cases()
    group = CaseMail(
        container.database, container.box, base_url=container.settings.external_url
    ).group()
    async with delivering_to(container, group) as settle:
        assert (await mail_desk.desk.act(case["id"], "solve")).status_code == 200
        await settle()
    await _send(container, mail_desk)
    (received,) = smtp.messages
    assert received.rcpt_tos == ["carol@example.net"]
    sent = _mail(smtp)
    assert sent["In-Reply-To"] == f"<{first}>"
    assert first in sent["References"]
    assert f"[#{case['number']}]" in sent["Subject"]
    assert sent["Auto-Submitted"] == "auto-generated"
    assert sent["Message-ID"].endswith(f"@{mail_desk.user.rpartition('@')[2]}>")


async def test_a_user_s_language_is_the_mail_s_and_it_is_signed_with_the_dkim_key(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    await mail_desk.create(**_outgoing(mail_desk, smtp, dkim_selector="desk", dkim_private_key=pem))
    user = await _new_user(mail_desk, "mei@example.net")
    async with container.unit_of_work(mail_desk.desk.tenant.id) as uow:
        await uow.begin_write()
        (await uow.users.get(uuid.UUID(user["id"]))).locale = "zh-Hans"
        await uow.commit()
    assert (await _password_link(mail_desk, user["id"]))["sent"] is True
    await _send(container, mail_desk)
    (received,) = smtp.messages
    assert received.content.startswith(b"DKIM-Signature:")
    domain = mail_desk.user.rpartition("@")[2]
    assert f"d={domain}".encode() in received.content.split(b"\r\n\r\n", 1)[0]
    sent = _mail(smtp)
    assert sent["Subject"] == f"admin 邀请您加入 {mail_desk.desk.tenant.slug}"
