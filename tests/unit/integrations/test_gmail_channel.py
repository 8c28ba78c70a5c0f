"""The Gmail hooks: message resources (``format=raw`` and ``format=full``) as channel messages,
and replies as the input of messages.send.

Every message the hooks make must be a ``ChannelMessage``, so each is checked through it.
"""

from __future__ import annotations

import base64
import email
import email.policy
from typing import Any

from casedesk.domain.channels import ChannelMessage
from casedesk.integrations.catalogue import builtin
from casedesk.integrations.channels.gmail import GmailHooks, b64url_decode
from casedesk.integrations.connector_hooks import hooks_of

SETTINGS = {"email_address": "support@example.com", "from_name": "Example Support"}


def b64url(content: bytes) -> str:
    return base64.urlsafe_b64encode(content).decode().rstrip("=")


def raw_resource(raw: bytes, **fields: Any) -> dict[str, Any]:
    return {
        "id": "18c0a1",
        "threadId": "18c0a0",
        "labelIds": ["INBOX", "UNREAD"],
        "snippet": "…",
        "historyId": "4242",
        "raw": b64url(raw),
    } | fields


def message_of(entity: dict[str, Any]) -> ChannelMessage:
    made = GmailHooks().message("new_mail", entity, {"trigger_id": "x", "settings": SETTINGS})
    assert made is not None
    return ChannelMessage.model_validate(made)


PLAIN = (
    b"From: Ann Smith <ann@example.com>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: Printer on fire\r\n"
    b"Message-ID: <m1@example.com>\r\n"
    b"In-Reply-To: <casedesk.1@desk.example>\r\n"
    b"References: <m0@example.com> <casedesk.1@desk.example>\r\n"
    b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"It smokes.\r\n"
)


def test_the_connector_names_these_hooks() -> None:
    manifest = builtin("gmail")
    assert manifest is not None
    assert isinstance(hooks_of(manifest), GmailHooks)


def test_a_raw_message_is_read_as_mail_with_gmails_ids() -> None:
    message = message_of(raw_resource(PLAIN))
    assert message.kind == "message"
    assert (message.id, message.thread_id) == ("18c0a1", "18c0a0")
    assert message.subject == "Printer on fire"
    assert message.text == "It smokes."
    assert (message.sender.address, message.sender.name) == ("ann@example.com", "Ann Smith")
    assert message.message_id == "m1@example.com"
    assert message.thread_keys() == ["casedesk.1@desk.example", "m0@example.com"]
    assert message.reply == {"thread_id": "18c0a0"}
    assert not message.own
    assert not message.automatic


def test_a_gb2312_subject_and_body_and_encoded_words_are_read() -> None:
    subject = "打印机着火了".encode("gb2312")
    raw = (
        b"From: =?UTF-8?B?" + base64.b64encode("张伟".encode()) + b"?= <zw@example.cn>\r\n"
        b"Subject: =?GB2312?B?" + base64.b64encode(subject) + b"?=\r\n"
        b"Content-Type: text/plain; charset=GB2312\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n" + "它在冒烟".encode("gb2312") + b"\r\n"
    )
    message = message_of(raw_resource(raw))
    assert message.subject == "打印机着火了"
    assert message.text == "它在冒烟"
    assert message.sender.name == "张伟"


def test_a_full_format_payload_is_read_part_by_part() -> None:
    html = "<p>Caf\u00e9 <b>ferm\u00e9</b></p>".encode("iso-8859-1")
    entity = {
        "id": "18c0b1",
        "threadId": "18c0b0",
        "labelIds": ["INBOX"],
        "payload": {
            "mimeType": "multipart/mixed",
            "headers": [
                {"name": "From", "value": "Zoé <zoe@example.fr>"},
                {"name": "Subject", "value": "=?ISO-8859-1?Q?Caf=E9_ferm=E9?="},
                {"name": "Message-ID", "value": "<f1@example.fr>"},
            ],
            "parts": [
                {
                    "mimeType": "multipart/alternative",
                    "parts": [
                        {
                            "mimeType": "text/html",
                            "headers": [
                                {"name": "Content-Type", "value": "text/html; charset=ISO-8859-1"}
                            ],
                            "body": {"size": len(html), "data": b64url(html)},
                        }
                    ],
                },
                {
                    "mimeType": "text/plain",
                    "filename": "notes.txt",
                    "headers": [{"name": "Content-Disposition", "value": "attachment"}],
                    "body": {"size": 10, "attachmentId": "ANGjdJ8"},
                },
            ],
        },
    }
    message = message_of(entity)
    assert message.subject == "Café fermé"
    assert message.text == "Café fermé"
    assert message.html is not None
    assert "<b>ferm\u00e9</b>" in message.html
    assert message.message_id == "f1@example.fr"
    assert message.thread_id == "18c0b0"


def test_an_auto_reply_is_automatic() -> None:
    raw = PLAIN.replace(b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:")
    assert message_of(raw_resource(raw)).automatic


def test_sent_mail_is_own_and_drafts_and_spam_are_ignored() -> None:
    assert message_of(raw_resource(PLAIN, labelIds=["SENT"])).own
    draft = message_of(raw_resource(PLAIN, labelIds=["DRAFT"]))
    assert (draft.kind, draft.note) == ("ignored", "a draft (DRAFT)")
    assert message_of(raw_resource(PLAIN, labelIds=["SPAM"])).kind == "ignored"


def test_a_reply_is_mime_in_the_thread_with_its_own_message_id() -> None:
    reply = {
        "text": "Pull the plug.",
        "html": "<p>Pull the plug.</p>",
        "subject": "Re: Printer on fire [#7]",
        "to": [{"address": "ann@example.com", "name": "Ann Smith"}],
        "thread_id": "18c0a0",
        "message_id": "casedesk.c1@desk.example",
        "in_reply_to": "m2@example.com",
        "references": ["m1@example.com"],
        "reply": {"thread_id": "18c0a0"},
        "case": {"id": "c", "number": 7, "title": "Printer on fire"},
        "comment": {"id": "c1", "author_name": "Bob"},
    }
    made = GmailHooks().outgoing("send", reply, {"settings": SETTINGS})
    assert made is not None
    assert made["threadId"] == "18c0a0"
    sent = email.message_from_bytes(b64url_decode(made["raw"]), policy=email.policy.default)
    assert sent["From"] == "Example Support <support@example.com>"
    assert sent["To"] == "Ann Smith <ann@example.com>"
    assert sent["Subject"] == "Re: Printer on fire [#7]"
    assert sent["Message-ID"] == "<casedesk.c1@desk.example>"
    assert sent["In-Reply-To"] == "<m2@example.com>"
    assert sent["References"] == "<m1@example.com> <m2@example.com>"
    body = sent.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().strip() == "Pull the plug."
