"""What the built-in channels' hooks say of a message's files (``files``): what to fetch and
how, what comes with the message itself, and what is named as not fetched."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from typing import Any

from casedesk.integrations.channel_files import b64decode
from casedesk.integrations.channels.gmail import GmailHooks
from casedesk.integrations.channels.graph import GraphHooks
from casedesk.integrations.channels.slack import INFO_FIELDS, SlackHooks

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452")


def _b64url(content: bytes) -> str:
    return base64.urlsafe_b64encode(content).decode().rstrip("=")


def test_base64_and_base64url_with_or_without_padding_decode_alike() -> None:
    content = bytes(range(256))
    for text in (
        base64.b64encode(content).decode(),
        _b64url(content),
        base64.urlsafe_b64encode(content).decode(),
    ):
        assert b64decode(text) == content


def test_a_gmail_full_payload_names_its_file_parts_and_how_to_get_them() -> None:
    payload = {
        "mimeType": "multipart/mixed",
        "parts": [
            {
                "partId": "0",
                "mimeType": "text/plain",
                "filename": "",
                "headers": [{"name": "Content-Type", "value": "text/plain"}],
                "body": {"size": 5, "data": _b64url(b"Hello")},
            },
            {
                "partId": "1",
                "mimeType": "image/png",
                "filename": "",
                "headers": [
                    {"name": "Content-Type", "value": "image/png"},
                    {"name": "Content-ID", "value": "<logo@example.net>"},
                    {"name": "Content-Disposition", "value": "inline"},
                ],
                "body": {"size": len(PNG), "data": _b64url(PNG)},
            },
            {
                "partId": "2",
                "mimeType": "application/pdf",
                "filename": "Rechnung März.pdf",
                "headers": [
                    {"name": "Content-Disposition", "value": "attachment"},
                ],
                "body": {"size": 90_000, "attachmentId": "ANGjdJ_x-1"},
            },
        ],
    }
    files = GmailHooks().files("new_mail", {"id": "18c0a1", "payload": payload}, {})
    image, invoice = files
    assert (image.data, image.content_id, image.inline, image.url) == (
        PNG,
        "logo@example.net",
        True,
        None,
    )
    assert invoice.filename == "Rechnung März.pdf"
    assert invoice.size == 90_000
    assert invoice.data is None
    assert invoice.url == "/users/me/messages/18c0a1/attachments/ANGjdJ_x-1"
    assert invoice.base64_field == "data"


def test_a_gmail_raw_message_holds_its_files() -> None:
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message["Subject"] = "Files"
    message.set_content("See the file.")
    message.add_attachment(b"%PDF-1.4 x", maintype="application", subtype="pdf", filename="a.pdf")
    entity = {"id": "1", "raw": _b64url(message.as_bytes())}
    (file,) = GmailHooks().files("new_mail", entity, {})
    assert (file.filename, file.data, file.url) == ("a.pdf", b"%PDF-1.4 x", None)


def test_outlook_files_are_fetched_one_by_one_and_items_and_links_are_noted() -> None:
    attachments = [
        {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "id": "AAMk/1=",
            "name": "logo.png",
            "contentType": "image/png",
            "size": 300,
            "isInline": True,
        },
        {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "id": "AAMk/4=",
            "name": "invoice.pdf",
            "size": 90_000,
            "isInline": False,
        },
        {"@odata.type": "#microsoft.graph.itemAttachment", "id": "2", "name": "Fwd: order"},
        {"@odata.type": "#microsoft.graph.referenceAttachment", "id": "3", "name": "Budget"},
    ]
    message = {"id": "AAMkAGI2=", "attachments": attachments}
    logo, invoice, item, link = GraphHooks().files("new_mail", message, {})
    assert invoice.url == "/me/messages/AAMkAGI2%3D/attachments/AAMk%2F4%3D/$value"
    assert invoice.base64_field is None
    assert logo.url == "/me/messages/AAMkAGI2%3D/attachments/AAMk%2F1%3D"
    assert (logo.base64_field, logo.content_id_field, logo.inline) == (
        "contentBytes",
        "contentId",
        True,
    )
    assert item.note is not None
    assert "Outlook item" in item.note
    assert link.note is not None
    assert "OneDrive or SharePoint" in link.note


def test_a_teams_message_names_its_pasted_images_and_its_shared_files() -> None:
    url = (
        "https://graph.microsoft.com/v1.0/teams/t/channels/c/messages/1"
        "/hostedContents/aWQ9eF8w/$value"
    )
    message: dict[str, Any] = {
        "id": "1",
        "body": {"contentType": "html", "content": f'<p>Look</p><img alt="" src="{url}">'},
        "attachments": [
            {"id": "a1", "contentType": "reference", "name": "manual.pdf", "contentUrl": "x"},
            {"id": "a2", "contentType": "application/vnd.microsoft.card.adaptive"},
        ],
    }
    image, shared = GraphHooks().files("channel_messages", message, {})
    assert (image.url, image.content_id, image.inline) == (url, "aWQ9eF8w", True)
    assert shared.filename == "manual.pdf"
    assert shared.note is not None
    assert "SharePoint" in shared.note


def _slack_event(files: list[dict[str, Any]]) -> dict[str, Any]:
    event = {"type": "message", "subtype": "file_share", "channel": "C1", "files": files}
    return {"type": "event_callback", "event": event}


def test_slack_files_are_downloaded_looked_up_or_noted() -> None:
    files = [
        {
            "id": "F1",
            "name": "log.txt",
            "mimetype": "text/plain",
            "size": 12,
            "url_private_download": "https://files.slack.com/files-pri/T-F1/download/log.txt",
        },
        {"id": "F2", "file_access": "check_file_info"},
        {"id": "F3", "mode": "tombstone"},
        {"id": "F4", "name": "Sheet", "is_external": True, "mode": "external"},
    ]
    hosted, looked_up, deleted, external = SlackHooks().files("events", _slack_event(files), {})
    assert hosted.url == "https://files.slack.com/files-pri/T-F1/download/log.txt"
    assert (hosted.filename, hosted.content_type, hosted.size) == ("log.txt", "text/plain", 12)
    assert looked_up.info_url == "/files.info?file=F2"
    assert looked_up.info_fields == INFO_FIELDS
    assert deleted.note is not None
    assert "deleted" in deleted.note
    assert external.note is not None
    assert "outside Slack" in external.note


def test_a_slack_file_shared_event_takes_the_file_files_info_gave() -> None:
    body = {
        "type": "event_callback",
        "event": {"type": "file_shared", "file_id": "F1", "channel_id": "C1"},
        "file": {"id": "F1", "name": "a.png", "url_private_download": "https://f/a.png"},
    }
    (file,) = SlackHooks().files("events", body, {})
    assert file.url == "https://f/a.png"


def test_a_gmail_part_whose_bytes_are_not_base64url_is_noted() -> None:
    part = {
        "partId": "1",
        "mimeType": "application/pdf",
        "filename": "a.pdf",
        "headers": [],
        "body": {"size": 3, "data": "AAAAA"},  # a length base64 never has
    }
    payload = {"mimeType": "multipart/mixed", "parts": [part]}
    (file,) = GmailHooks().files("new_mail", {"id": "1", "payload": payload}, {})
    assert file.data is None
    assert file.note == "its bytes in the message are not base64url"
