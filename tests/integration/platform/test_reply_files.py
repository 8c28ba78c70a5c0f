"""A public comment's files go out with its reply through Gmail (raw MIME, multipart/mixed)
and Outlook (fileAttachment with contentBytes), against the local Gmail and Graph servers;
a file larger than Graph takes inline fails the delivery, naming it."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from casedesk.bootstrap import Container
from tests.support.cases import Desk
from tests.support.channels import DeskSide
from tests.support.connections import REDIRECT_URI
from tests.support.gmail import GmailDesk, gmail_server, mail
from tests.support.graph import ACCESS_TOKEN, GraphMail, graph_server
from tests.support.graph_desk import GraphDesk
from tests.support.oauth_server import oauth_server

PDF = b"%PDF-1.4\n" + secrets.token_bytes(4096) + b"\n%%EOF\n"
NOTES = "Schritte:\n1. Stecker ziehen\n2. 等待\n".encode()


class OutlookDesk(GraphDesk):
    def __init__(self, desk: Desk, container: Container, graph: GraphMail) -> None:
        super().__init__(desk, container)
        self.graph = graph


@pytest.fixture
async def gmail(desk: Desk, container: Container) -> AsyncIterator[GmailDesk]:
    async with oauth_server(REDIRECT_URI) as oauth, gmail_server(desk.http, oauth) as mailbox:
        connected = GmailDesk(desk, container, mailbox)
        await connected.connect()
        yield connected


@pytest.fixture
async def outlook(desk: Desk, container: Container) -> AsyncIterator[OutlookDesk]:
    async with graph_server(desk.http, token=ACCESS_TOKEN) as graph:
        connected = OutlookDesk(desk, container, graph)
        await connected.connect("outlook", "new_mail", {"base_url": graph.base_url}, "outlook-in")
        yield connected


async def _reply_with_files(
    side: DeskSide, case_id: str, body: str, *files: tuple[str, bytes, str]
) -> dict[str, Any]:
    http, headers = side.desk.http, side.desk.headers
    uploaded = await http.post(
        f"/api/v1/cases/{case_id}/attachments",
        files=[("files", file) for file in files],
        headers=headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    ids = [item["id"] for item in uploaded.json()["items"]]
    response = await http.post(
        f"/api/v1/cases/{case_id}/comments",
        json={"body": body, "public": True, "attachment_ids": ids},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    (comment,) = [c for c in await side.comments(case_id) if c["body"] == body]
    return comment


async def test_a_gmail_reply_carries_the_comment_s_files(gmail: GmailDesk) -> None:
    await gmail.gmail.deliver(mail("Printer on fire", "It smokes."))
    await gmail.work()
    (case,) = await gmail.cases()
    comment = await _reply_with_files(
        gmail,
        case["id"],
        "The manual and the steps.",
        ("Handbuch für Drucker.pdf", PDF, "application/pdf"),
        ("notes.txt", NOTES, "text/plain"),
    )
    assert await gmail.send_replies() == 1

    (sent,) = gmail.gmail.sent_messages()
    assert sent.get_content_type() == "multipart/mixed"
    assert next(sent.iter_parts()).get_content_type() == "multipart/alternative"
    text = sent.get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content().strip() == "The manual and the steps."
    files = [
        (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
        for part in sent.iter_attachments()
    ]
    assert files == [
        ("Handbuch für Drucker.pdf", "application/pdf", PDF),
        ("notes.txt", "text/plain", NOTES),
    ]
    shown = {c["id"]: c for c in await gmail.comments(case["id"])}
    assert shown[comment["id"]]["delivery"]["status"] == "sent"


async def test_an_outlook_reply_carries_the_files_as_file_attachments(
    outlook: OutlookDesk,
) -> None:
    await outlook.graph.receive("Printer on fire", text="It smokes.")
    await outlook.work()
    (case,) = await outlook.cases()
    comment = await _reply_with_files(
        outlook,
        case["id"],
        "The manual.",
        ("Handbuch für Drucker.pdf", PDF, "application/pdf"),
        ("notes.txt", NOTES, "text/plain"),
    )
    assert await outlook.send_replies() == 1

    (sent,) = outlook.graph.sent
    assert sent["hasAttachments"] is True
    got = [
        (a["@odata.type"], a["name"], a["contentType"], base64.b64decode(a["contentBytes"]))
        for a in sent["attachments"]
    ]
    assert got == [
        ("#microsoft.graph.fileAttachment", "Handbuch für Drucker.pdf", "application/pdf", PDF),
        ("#microsoft.graph.fileAttachment", "notes.txt", "text/plain", NOTES),
    ]
    shown = {c["id"]: c for c in await outlook.comments(case["id"])}
    assert shown[comment["id"]]["delivery"]["status"] == "sent"


async def test_an_outlook_file_over_3_mb_fails_the_reply_naming_it(outlook: OutlookDesk) -> None:
    await outlook.graph.receive("Printer on fire", text="It smokes.")
    await outlook.work()
    (case,) = await outlook.cases()
    large = b"%PDF-1.4\n" + secrets.token_bytes(3 * 1024 * 1024)
    comment = await _reply_with_files(
        outlook, case["id"], "The big scan.", ("scan.pdf", large, "application/pdf")
    )
    await outlook.send_replies()

    assert outlook.graph.sent == []
    shown = {c["id"]: c for c in await outlook.comments(case["id"])}
    delivery = shown[comment["id"]]["delivery"]
    assert delivery["status"] == "failed"
    assert "'scan.pdf'" in delivery["error"]
    assert "3 MB" in delivery["error"]


async def test_a_reply_without_files_sends_no_attachments(outlook: OutlookDesk) -> None:
    await outlook.graph.receive("Printer on fire", text="It smokes.")
    await outlook.work()
    (case,) = await outlook.cases()
    await outlook.reply(case["id"], "Text only.")
    assert await outlook.send_replies() == 1
    (sent,) = outlook.graph.sent
    assert sent["hasAttachments"] is False
