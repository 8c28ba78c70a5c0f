"""Agents' replies on mail cases, out through the mailbox's SMTP server (aiosmtpd on
loopback), and the customer's answer back in through dovecot onto the same case."""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from casedesk.activities.channel_delivery import DELIVER
from casedesk.activities.mailboxes import ACKNOWLEDGE
from casedesk.bootstrap import Container
from tests.support.dovecot import message
from tests.support.instant import run_due_now, run_jobs
from tests.support.mailboxes import MailDesk
from tests.support.smtp_server import PASSWORD, USER, SmtpTestServer, smtp_server


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpTestServer]:
    with smtp_server(tmp_path, mode="starttls") as server:
        yield server


def _outgoing(mail_desk: MailDesk, smtp: SmtpTestServer, **overrides: Any) -> dict[str, Any]:
    both = mail_desk.dovecot.ca_file.read_text() + "\n" + smtp.ca_pem
    settings = {
        "tls_ca": both,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_security": "starttls",
        "smtp_username": USER,
        "smtp_password": PASSWORD,
        "from_name": "Acme Support",
    }
    settings.update(overrides)
    return settings


async def _deliver(container: Container, mail_desk: MailDesk) -> None:
    await run_due_now(container, mail_desk.desk.tenant.id, DELIVER)


async def _case_from_mail(mail_desk: MailDesk, first_id: str) -> dict[str, Any]:
    mail_desk.append(message("Printer on fire", message_id=f"<{first_id}>"))
    await mail_desk.poll()
    (case,) = await mail_desk.cases()
    return case


async def _reply(mail_desk: MailDesk, case_id: str, body: str) -> dict[str, Any]:
    response = await mail_desk.http.post(
        f"/api/v1/cases/{case_id}/comments",
        json={"body": body, "public": True},
        headers=mail_desk.headers,
    )
    assert response.status_code == 201, response.text  # the case, with its comments
    (comment,) = [c for c in await mail_desk.comments(case_id) if c["body"] == body]
    return comment


async def test_a_reply_goes_out_in_the_thread_and_the_answer_finds_the_case(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    first = f"{uuid.uuid4().hex}@example.net"
    case = await _case_from_mail(mail_desk, first)
    comment = await _reply(mail_desk, case["id"], "A technician is on the way.")
    await _deliver(container, mail_desk)

    (received,) = smtp.messages
    assert received.mail_from == mail_desk.user
    assert received.rcpt_tos == ["carol@example.net"]
    sent = email.message_from_bytes(received.content, policy=email.policy.default)
    domain = mail_desk.user.rpartition("@")[2]
    message_id = f"casedesk.{uuid.UUID(comment['id']).hex}@{domain}"
    assert sent["Message-ID"] == f"<{message_id}>"
    assert sent["In-Reply-To"] == f"<{first}>"
    assert sent["References"] == f"<{first}>"
    assert sent["From"] == f"Acme Support <{mail_desk.user}>"
    assert f"[#{case['number']}]" in sent["Subject"]
    assert "Auto-Submitted" not in sent
    # The agent_reply template around the agent's text: their name, the case on the portal.
    text = sent.get_body(("plain",)).get_content()
    assert text.splitlines()[0] == "A technician is on the way."
    assert f"— {comment['author_name']}, " in text
    assert f"/portal/{mail_desk.desk.tenant.slug}/cases/{case['number']}" in text
    assert sent["Subject"] == f"Re: {case['title']} [#{case['number']}]"
    (shown,) = [c for c in await mail_desk.comments(case["id"]) if c["id"] == comment["id"]]
    assert shown["delivery"]["status"] == "sent"

    # The customer answers the reply, from a mail client that keeps the headers.
    headers = {"In-Reply-To": f"<{message_id}>", "References": f"<{first}> <{message_id}>"}
    mail_desk.append(message("Re: Printer on fire", body="Thanks!", headers=headers))
    # A second agent reply, then the customer answers the first reply once more.
    await _reply(mail_desk, case["id"], "Anything else?")
    await _deliver(container, mail_desk)
    late = {"In-Reply-To": f"<{message_id}>", "References": f"<{message_id}>"}
    mail_desk.append(message("AW: Printer on fire", body="Still smoking.", headers=late))
    await mail_desk.poll()
    assert len(await mail_desk.cases()) == 1
    texts = [c["body"] for c in await mail_desk.comments(case["id"])]
    assert "Thanks!" in texts[-2] or "Thanks!" in " ".join(texts)
    assert any("Still smoking." in text for text in texts)
    assert len(smtp.messages) == 2
    second = email.message_from_bytes(smtp.messages[1].content, policy=email.policy.default)
    assert message_id in second["References"]


async def test_without_an_outgoing_server_the_reply_fails_and_says_why(
    mail_desk: MailDesk, container: Container
) -> None:
    await mail_desk.create()
    case = await _case_from_mail(mail_desk, f"{uuid.uuid4().hex}@example.net")
    comment = await _reply(mail_desk, case["id"], "Hello?")
    await _deliver(container, mail_desk)
    (shown,) = [c for c in await mail_desk.comments(case["id"]) if c["id"] == comment["id"]]
    assert shown["delivery"]["status"] == "failed"
    assert "no outgoing (SMTP) server" in shown["delivery"]["error"]


async def test_a_busy_server_is_tried_again_and_a_refusal_is_final(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    busy = message("Help", sender="Busy <busy-450@example.net>")
    mail_desk.append(busy)
    gone = message("Help too", sender="Gone <refuse-550@example.net>")
    mail_desk.append(gone)
    await mail_desk.poll()
    cases = {c["title"]: c for c in await mail_desk.cases()}
    retried = await _reply(mail_desk, cases["Help"]["id"], "On it.")
    refused = await _reply(mail_desk, cases["Help too"]["id"], "On it too.")
    await _deliver(container, mail_desk)
    shown = {c["id"]: c for c in await mail_desk.comments(cases["Help"]["id"])}
    assert shown[retried["id"]]["delivery"]["status"] == "pending"
    assert "450" in shown[retried["id"]]["delivery"]["error"]
    shown = {c["id"]: c for c in await mail_desk.comments(cases["Help too"]["id"])}
    assert shown[refused["id"]]["delivery"]["status"] == "failed"
    assert "550" in shown[refused["id"]]["delivery"]["error"]
    assert smtp.messages == []


async def test_mail_is_signed_with_the_mailbox_s_dkim_key(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    made = await mail_desk.create(
        **_outgoing(mail_desk, smtp, dkim_selector="desk", dkim_private_key=pem)
    )
    assert made["has_dkim_key"] is True
    assert "dkim_private_key" not in made
    case = await _case_from_mail(mail_desk, f"{uuid.uuid4().hex}@example.net")
    await _reply(mail_desk, case["id"], "Signed.")
    await _deliver(container, mail_desk)
    (received,) = smtp.messages
    domain = mail_desk.user.rpartition("@")[2]
    assert received.content.startswith(b"DKIM-Signature:")
    assert f"d={domain}".encode() in received.content.split(b"\r\n\r\n", 1)[0]


async def test_outgoing_settings_are_checked_and_write_only(
    mail_desk: MailDesk, smtp: SmtpTestServer
) -> None:
    bad = await mail_desk.http.post(
        "/api/v1/mailboxes",
        json=mail_desk.settings(dkim_selector="desk", dkim_private_key="not a key"),
        headers=mail_desk.headers,
    )
    assert bad.status_code == 422
    assert "dkim_private_key" in bad.text
    half = await mail_desk.http.post(
        "/api/v1/mailboxes",
        json=mail_desk.settings(dkim_selector="desk"),
        headers=mail_desk.headers,
    )
    assert half.status_code == 422
    made = await mail_desk.create(**_outgoing(mail_desk, smtp, smtp_port=None))
    assert made["smtp_port"] == 587
    assert made["has_smtp_password"] is True
    assert PASSWORD not in str(made)
    tested = await mail_desk.test()
    assert tested["ok"] is True
    assert tested["smtp"]["ok"] is False  # port 587 on loopback: nobody there
    fixed = await mail_desk.http.patch(
        f"/api/v1/mailboxes/{made['id']}", json={"smtp_port": smtp.port}, headers=mail_desk.headers
    )
    assert fixed.status_code == 200
    tested = await mail_desk.test()
    assert tested["smtp"]["ok"] is True
    assert tested["smtp"]["greeting"].startswith("250")
    wrong = await mail_desk.http.patch(
        f"/api/v1/mailboxes/{made['id']}", json={"smtp_password": "nope"}, headers=mail_desk.headers
    )
    assert wrong.status_code == 200
    tested = await mail_desk.test()
    assert tested["smtp"]["ok"] is False
    assert "535" in tested["smtp"]["error"]


async def _acknowledge(container: Container, mail_desk: MailDesk) -> None:
    await run_jobs(container, mail_desk.desk.tenant.id, ACKNOWLEDGE, rounds=1)


async def test_a_new_case_is_acknowledged_and_a_reply_to_that_threads(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    first = f"{uuid.uuid4().hex}@example.net"
    case = await _case_from_mail(mail_desk, first)
    await _acknowledge(container, mail_desk)
    (received,) = smtp.messages
    assert received.rcpt_tos == ["carol@example.net"]
    ack = email.message_from_bytes(received.content, policy=email.policy.default)
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == f"<{first}>"
    assert ack["Subject"].startswith("We received your request")
    assert f"[#{case['number']}]" in ack["Subject"]
    assert f"#{case['number']}" in ack.get_body(("plain",)).get_content()
    ack_id = ack["Message-ID"].strip("<>")
    assert ack_id.startswith("casedesk.ack.")

    # The customer answers the acknowledgement (a mail client keeps In-Reply-To).
    answer = {"In-Reply-To": f"<{ack_id}>", "References": f"<{first}> <{ack_id}>"}
    mail_desk.append(message("Re: We received your request", body="More detail.", headers=answer))
    await mail_desk.poll()
    await _acknowledge(container, mail_desk)
    assert len(await mail_desk.cases()) == 1
    assert any("More detail." in c["body"] for c in await mail_desk.comments(case["id"]))
    assert len(smtp.messages) == 1  # a comment is not acknowledged


async def test_chinese_mail_is_acknowledged_in_chinese(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    mail_desk.append(message("我的打印机着火了", body="请尽快处理。"))
    await mail_desk.poll()
    await _acknowledge(container, mail_desk)
    (received,) = smtp.messages
    ack = email.message_from_bytes(received.content, policy=email.policy.default)
    assert ack["Subject"].startswith("我们已收到您的请求\uff1a我的打印机着火了")
    assert "感谢您联系" in ack.get_body(("plain",)).get_content()


async def test_no_acknowledgement_when_turned_off_or_for_automatic_mail(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    made = await mail_desk.create(**_outgoing(mail_desk, smtp, acknowledge=False))
    assert made["acknowledge"] is False
    mail_desk.append(message("Quiet please"))
    await mail_desk.poll()
    await _acknowledge(container, mail_desk)
    assert smtp.messages == []
    on = await mail_desk.http.patch(
        f"/api/v1/mailboxes/{made['id']}", json={"acknowledge": True}, headers=mail_desk.headers
    )
    assert on.status_code == 200
    mail_desk.append(message("Away", headers={"Auto-Submitted": "auto-replied"}))
    await mail_desk.poll()
    await _acknowledge(container, mail_desk)
    assert smtp.messages == []
    null = await mail_desk.http.patch(
        f"/api/v1/mailboxes/{made['id']}", json={"acknowledge": None}, headers=mail_desk.headers
    )
    assert null.status_code == 422
    assert "acknowledge" in null.text


async def _own_template(mail_desk: MailDesk, kind: str, **fields: str) -> None:
    saved = await mail_desk.http.put(
        f"/api/v1/notifications/{kind}/en", json=fields, headers=mail_desk.headers
    )
    assert saved.status_code == 200, saved.text


async def test_the_tenant_s_own_templates_write_the_acknowledgement_and_the_reply(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    await _own_template(
        mail_desk,
        "case_received",
        subject="Got it: {{ case.title }}",
        text="Hi {{ customer.name }}, case {{ case.number }} is ours now.",
    )
    await _own_template(
        mail_desk,
        "agent_reply",
        subject="Re: {{ case.title }}",
        text="{{ comment.text }}\n\n-- {{ agent.name }} at {{ desk.name }}",
    )
    case = await _case_from_mail(mail_desk, f"{uuid.uuid4().hex}@example.net")
    await _acknowledge(container, mail_desk)
    await _reply(mail_desk, case["id"], "A technician is on the way.")
    await _deliver(container, mail_desk)
    ack, reply = (
        email.message_from_bytes(m.content, policy=email.policy.default) for m in smtp.messages
    )
    assert ack["Subject"] == f"Got it: Printer on fire [#{case['number']}]"
    assert (
        ack.get_body(("plain",))
        .get_content()
        .startswith(f"Hi Carol Customer, case {case['number']} is ours now.")
    )
    assert reply["Subject"] == f"Re: Printer on fire [#{case['number']}]"
    body = reply.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body.startswith("A technician is on the way.\n\n-- ")
    assert body.rstrip().endswith(f" at {mail_desk.desk.tenant.slug}")
    assert reply["In-Reply-To"] is not None  # still in the thread


async def test_an_own_template_that_fails_with_the_real_values_sends_the_built_in_one(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    """It passed its check with the sample values (case 1042); with this case's number it
    divides by zero: the customer still gets the acknowledgement, casedesk's own."""
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    case = await _case_from_mail(mail_desk, f"{uuid.uuid4().hex}@example.net")
    assert case["number"] != 1042
    await _own_template(
        mail_desk,
        "case_received",
        subject="Got it",
        text=f"{{{{ 100 // (case.number - {case['number']}) }}}}",
    )
    await _acknowledge(container, mail_desk)
    (received,) = smtp.messages
    ack = email.message_from_bytes(received.content, policy=email.policy.default)
    assert ack["Subject"].startswith("We received your request")
