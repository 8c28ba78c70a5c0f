"""SMTP submissions in the action trace, and a comment's files going out with its mail reply:
a real SMTP server on loopback (aiosmtpd) takes the mail, the trace API shows the records."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import secrets
import uuid
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from casedesk.bootstrap import Container
from casedesk.traces.documents import document
from tests.support.connections import traces_of
from tests.support.dovecot import message
from tests.support.mailboxes import MailDesk
from tests.support.smtp_server import PASSWORD, SmtpTestServer, smtp_server
from tests.support.web import signed_in

from .test_mail_replies import _acknowledge, _case_from_mail, _deliver, _outgoing

PNG = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(2048)
TEXT = "Zeile eins\r\nline two\nno final newline, the bytes kept as they are: äö 你好".encode()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpTestServer]:
    with smtp_server(tmp_path, mode="starttls") as server:
        yield server


def _trace_parent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


async def _comment(
    mail_desk: MailDesk,
    case_id: str,
    body: str,
    *,
    attachment_ids: list[str] | None = None,
    traceparent: str | None = None,
) -> dict[str, Any]:
    headers = dict(mail_desk.headers)
    if traceparent is not None:
        headers["traceparent"] = traceparent
    payload: dict[str, Any] = {"body": body, "public": True}
    if attachment_ids:
        payload["attachment_ids"] = attachment_ids
    response = await mail_desk.http.post(
        f"/api/v1/cases/{case_id}/comments", json=payload, headers=headers
    )
    assert response.status_code == 201, response.text
    (comment,) = [c for c in await mail_desk.comments(case_id) if c["body"] == body]
    return comment


async def _upload(mail_desk: MailDesk, case_id: str, *files: tuple[str, bytes, str]) -> list[str]:
    response = await mail_desk.http.post(
        f"/api/v1/cases/{case_id}/attachments",
        files=[("files", file) for file in files],
        headers=mail_desk.headers,
    )
    assert response.status_code == 201, response.text
    return [item["id"] for item in response.json()["items"]]


def _smtp_traces(traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in traces if t["method"] == "SMTP"]


def _headers(record: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in record["request"]["headers"]:
        found.setdefault(name, []).append(value)
    return found


async def test_a_reply_s_submission_is_traced_with_headers_and_the_body_s_digest_only(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    mailbox = await mail_desk.create(**_outgoing(mail_desk, smtp))
    first = f"{uuid.uuid4().hex}@example.net"
    case = await _case_from_mail(mail_desk, first)
    trace_id, traceparent = _trace_parent()
    body = f"The technician comes at nine. {uuid.uuid4().hex}"
    comment = await _comment(mail_desk, case["id"], body, traceparent=traceparent)
    await _deliver(container, mail_desk)
    (received,) = smtp.messages

    (record,) = _smtp_traces(
        await traces_of(container, mail_desk.http, mail_desk.desk.tenant, mailbox["id"])
    )
    assert record["url"] == f"smtp://127.0.0.1:{smtp.port}"
    assert record["connector"] == "email"
    assert record["action"] == "reply"
    assert record["connection_id"] == mailbox["id"]
    assert record["trace_id"] == trace_id  # with the comment's request and its delivery job
    assert record["parent_span_id"] is not None
    assert record["attempt"] == 1
    assert record["status"] == 250
    assert record["error"] is None
    assert record["response"]["body"]["text"] == "2.0.0 Message accepted for delivery"
    headers = _headers(record)
    assert headers["smtp-security"] == ["starttls"]
    assert headers["smtp-auth"] == ["password"]
    assert headers["mail-from"] == [mail_desk.user]
    assert headers["rcpt-to"] == ["carol@example.net"]
    domain = mail_desk.user.rpartition("@")[2]
    assert headers["message-id"] == [f"<casedesk.{uuid.UUID(comment['id']).hex}@{domain}>"]
    assert headers["in-reply-to"] == [f"<{first}>"]
    assert headers["references"] == [f"<{first}>"]
    assert f"[#{case['number']}]" in headers["subject"][0]
    assert headers["from"] == [f"Acme Support <{mail_desk.user}>"]
    assert headers["dkim-signature"] == ["absent"]
    assert "auto-submitted" not in headers
    sent = record["request"]["body"]
    assert sent["text"] is None
    assert sent["content_type"] == "message/rfc822"
    assert sent["size"] == len(received.content)
    assert sent["sha256"] == hashlib.sha256(received.content).hexdigest()
    assert body not in str(record)
    assert PASSWORD not in str(record)

    listed = await mail_desk.http.get(
        "/api/v1/traces", params={"url": "smtp://"}, headers=mail_desk.headers
    )
    assert [item["id"] for item in listed.json()["items"]] == [record["id"]]


async def test_a_refused_submission_is_traced_with_the_server_s_answer(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    mailbox = await mail_desk.create(**_outgoing(mail_desk, smtp))
    mail_desk.append(message("Help too", sender="Gone <refuse-550@example.net>"))
    await mail_desk.poll()
    (case,) = await mail_desk.cases()
    await _comment(mail_desk, case["id"], "On it.")
    await _deliver(container, mail_desk)
    assert smtp.messages == []

    (record,) = _smtp_traces(
        await traces_of(container, mail_desk.http, mail_desk.desk.tenant, mailbox["id"])
    )
    assert record["status"] == 550
    assert "550 5.1.1 No such user here" in record["error"]["message"]
    assert "550 5.1.1 No such user here" in record["response"]["body"]["text"]
    assert _headers(record)["rcpt-to"] == ["refuse-550@example.net"]
    statuses = await mail_desk.http.get(
        "/api/v1/traces", params={"status": "5xx"}, headers=mail_desk.headers
    )
    assert record["id"] in [item["id"] for item in statuses.json()["items"]]
    assert PASSWORD not in str(record)


async def test_the_acknowledgement_is_traced_as_automatic_mail(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    mailbox = await mail_desk.create(**_outgoing(mail_desk, smtp))
    await _case_from_mail(mail_desk, f"{uuid.uuid4().hex}@example.net")
    await _acknowledge(container, mail_desk)
    (received,) = smtp.messages
    (record,) = _smtp_traces(
        await traces_of(container, mail_desk.http, mail_desk.desk.tenant, mailbox["id"])
    )
    assert record["action"] == "acknowledge"
    assert _headers(record)["auto-submitted"] == ["auto-replied"]
    assert record["request"]["body"]["sha256"] == hashlib.sha256(received.content).hexdigest()


async def test_a_reply_carries_the_comment_s_files_as_attachment_parts(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    case = await _case_from_mail(mail_desk, f"{uuid.uuid4().hex}@example.net")
    ids = await _upload(
        mail_desk,
        case["id"],
        ("Übersicht 报告.txt", TEXT, "text/plain"),
        ("photo.png", PNG, "image/png"),
    )
    comment = await _comment(mail_desk, case["id"], "The files you asked for.", attachment_ids=ids)
    await _deliver(container, mail_desk)

    (received,) = smtp.messages
    sent = email.message_from_bytes(received.content, policy=email.policy.default)
    assert sent.get_content_type() == "multipart/mixed"
    parts = list(sent.iter_parts())
    assert parts[0].get_content_type() == "multipart/alternative"
    assert sent.get_body(("plain",)).get_content().startswith("The files you asked for.")
    files = [
        (p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in parts[1:]
    ]
    assert files == [
        ("Übersicht 报告.txt", "text/plain", TEXT),
        ("photo.png", "image/png", PNG),
    ]
    # The name beyond ASCII goes as RFC 2231 (filename*=utf-8''…).
    assert b"filename*=utf-8''%C3%9Cbersicht" in received.content
    (shown,) = [c for c in await mail_desk.comments(case["id"]) if c["id"] == comment["id"]]
    assert shown["delivery"]["status"] == "sent"


async def test_files_over_the_limit_together_fail_the_reply_naming_them(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container
) -> None:
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    case = await _case_from_mail(mail_desk, f"{uuid.uuid4().hex}@example.net")
    ids = await _upload(
        mail_desk,
        case["id"],
        ("big-one.bin", secrets.token_bytes(3000), "application/octet-stream"),
        ("big-two.bin", secrets.token_bytes(3000), "application/octet-stream"),
    )
    comment = await _comment(mail_desk, case["id"], "Both files.", attachment_ids=ids)
    settings = container.settings
    container.settings = settings.model_copy(update={"attachment_max_bytes": 5000})
    try:
        await _deliver(container, mail_desk)
    finally:
        container.settings = settings

    assert smtp.messages == []
    (shown,) = [c for c in await mail_desk.comments(case["id"]) if c["id"] == comment["id"]]
    assert shown["delivery"]["status"] == "failed"
    error = shown["delivery"]["error"]
    assert "big-one.bin" in error
    assert "big-two.bin" in error
    assert "CASEDESK_ATTACHMENT_MAX_BYTES" in error


async def test_the_case_page_links_a_mail_reply_to_its_smtp_submission(
    mail_desk: MailDesk, smtp: SmtpTestServer, container: Container, client: httpx.AsyncClient
) -> None:
    await mail_desk.create(**_outgoing(mail_desk, smtp))
    case = await _case_from_mail(mail_desk, f"{uuid.uuid4().hex}@example.net")
    comment = await _comment(mail_desk, case["id"], "On our way.")
    await _deliver(container, mail_desk)
    await container.hot.put_many([document(r) for r in container.traces.drain(1000)])
    await signed_in(client, mail_desk.desk.tenant, mail_desk.desk.tenant.admin_id)

    page = await client.get(f"/app/cases/{case['number']}")
    assert page.status_code == 200
    links = dict(
        re.findall(
            r'id="comment-([0-9a-f-]+)".*?class="calls-link" href="([^"]+)"', page.text, re.S
        )
    )
    delivery = unescape(links[comment["id"]])
    assert f"connection={mail_desk.mailbox['id']}" in delivery
    calls = await client.get(delivery)
    assert calls.status_code == 200
    assert "SMTP" in calls.text
    assert f"127.0.0.1:{smtp.port}" in calls.text
