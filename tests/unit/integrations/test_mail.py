"""Mail as channels read and write it: real-world MIME into a ChannelMessage's fields, and an
agent's reply into a message that stays in the thread."""

from __future__ import annotations

import base64
import email
import email.policy
from email.message import EmailMessage

import pytest

from casedesk.domain.channels import ChannelMessage
from casedesk.integrations.mail import (
    compose_reply,
    decode_header_value,
    html_text,
    parse_message,
)

PLAIN = b"""\
From: =?utf-8?Q?Ren=C3=A9e_Dupont?= <renee@example.org>
To: Support <support@example.com>, "Doe, John" <john@example.net>
Cc: =?utf-8?B?5byg5LiJ?= <zhang@example.cn>
Subject: Printer on fire
Date: Tue, 05 Mar 2024 10:15:00 +0100
Message-ID: <first@mail.example.org>
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

It smokes.\r
Please help.
"""


def _mime(subject_header: str, body: str, charset: str, **headers: str) -> bytes:
    """A message whose body is in ``charset`` (quoted-printable) and whose subject header is
    written as given (encoded words and all)."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = "Customer <customer@example.org>"
    message["To"] = "support@example.com"
    message["Message-ID"] = "<m1@example.org>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body.encode(charset), "text", "plain", cte="quoted-printable")
    message.set_param("charset", charset)
    raw = message.as_bytes()
    return f"Subject: {subject_header}\r\n".encode() + raw


def test_a_plain_message_gives_subject_body_sender_recipients_and_ids() -> None:
    fields = parse_message(PLAIN)
    assert fields["subject"] == "Printer on fire"
    assert fields["text"] == "It smokes.\nPlease help."
    assert fields["html"] is None
    assert fields["sender"] == {"address": "renee@example.org", "name": "Renée Dupont"}
    assert fields["to"] == [
        {"address": "support@example.com", "name": "Support"},
        {"address": "john@example.net", "name": "Doe, John"},
    ]
    assert fields["cc"] == [{"address": "zhang@example.cn", "name": "张三"}]
    assert fields["message_id"] == "first@mail.example.org"
    assert fields["sent_at"] == "2024-03-05T10:15:00+01:00"
    assert fields["automatic"] is False
    # The shape the threading rules work on takes it as it is.
    assert ChannelMessage.model_validate({"id": "x", **fields}).sender.name == "Renée Dupont"


def test_a_reply_keeps_in_reply_to_and_every_reference_in_order() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: Re: hi\r\nMessage-ID: <3@x>\r\n"
        b"In-Reply-To: <2@x>\r\nReferences: <1@x>\r\n <2@x>\r\n\r\nok\r\n"
    )
    fields = parse_message(raw)
    assert fields["in_reply_to"] == ["2@x"]
    assert fields["references"] == ["1@x", "2@x"]
    assert ChannelMessage.model_validate({"id": "3", **fields}).thread_keys() == ["2@x", "1@x"]


def test_multipart_alternative_takes_the_plain_part_and_keeps_the_html() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Subject"] = "both"
    message.set_content("plain words")
    message.add_alternative("<p>html <b>words</b></p>", subtype="html")
    message.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="a.pdf")
    fields = parse_message(message.as_bytes())
    assert fields["text"] == "plain words"
    assert fields["html"] is not None
    assert "<b>words</b>" in fields["html"]


def test_an_html_only_message_becomes_text_without_scripts_or_styles() -> None:
    html = (
        "<html><head><style>p {color: red}</style><title>t</title></head><body>"
        "<script>alert('x')</script><p>Hello&nbsp;there,</p><p>line one<br>line   two</p>"
        "<ul><li>first</li><li>second</li></ul><div>caf&eacute;</div></body></html>"
    )
    message = EmailMessage()
    message["From"] = "a@example.org"
    message.set_content(html, subtype="html")
    fields = parse_message(message.as_bytes())
    assert fields["text"] == "Hello there,\n\nline one\nline two\n\nfirst\n\nsecond\n\ncafé"
    assert "alert" not in fields["text"]
    assert "color" not in fields["text"]
    assert fields["html"] is not None


def test_html_text_keeps_preformatted_text_as_written() -> None:
    assert html_text("<pre>a   b\n  c</pre>") == "a   b\n  c"


@pytest.mark.parametrize(
    ("charset", "body"),
    [
        ("utf-8", "Grüße, 你好 ✓"),
        ("iso-8859-1", "Grüße, ça va?"),
        ("gbk", "您好\uff0c打印机坏了"),
        ("gb18030", "您好\uff0c打印机坏了 𠀀"),
    ],
)
def test_bodies_in_each_charset_read_correctly(charset: str, body: str) -> None:
    assert parse_message(_mime("s", body, charset))["text"] == body


def test_a_body_labelled_gb2312_with_gbk_characters_reads_as_gb18030() -> None:
    # 镕 (U+9555) is in GBK but not in GB2312: mailers label such text gb2312 anyway.
    body = "朱镕基 您好"
    raw = _mime("s", "x", "gbk").replace(b'charset="gbk"', b'charset="gb2312"')
    raw = raw.replace(b"charset=gbk", b"charset=gb2312")
    encoded = body.encode("gbk")
    raw = raw.replace(
        b"Content-Transfer-Encoding: quoted-printable", b"Content-Transfer-Encoding: base64"
    )
    head, _, _ = raw.partition(b"\r\n\r\n")
    raw = head + b"\r\n\r\n" + base64.b64encode(encoded) + b"\r\n"
    assert b"gb2312" in raw
    assert parse_message(raw)["text"] == body


def test_a_gb2312_subject_in_an_encoded_word_reads_correctly() -> None:
    subject = "打印机坏了\uff0c请帮忙"
    word = "=?gb2312?B?" + base64.b64encode(subject.encode("gb2312")).decode() + "?="
    fields = parse_message(_mime(word, "x", "utf-8"))
    assert fields["subject"] == subject


def test_encoded_words_of_several_charsets_and_folding_read_as_one_subject() -> None:
    first = "=?gb2312?B?" + base64.b64encode("朱镕基".encode("gbk")).decode() + "?="
    second = "=?iso-8859-1?Q?caf=E9?="
    assert decode_header_value(f"{first}\r\n {second} ok") == "朱镕基café ok"


def test_raw_8bit_headers_read_as_utf8_or_gb18030() -> None:
    utf8 = "Subject: Grüße 你好\r\nFrom: a@example.org\r\n\r\nx".encode()
    gbk = "Subject: 你好\r\nFrom: a@example.org\r\n\r\nx".encode("gbk")
    assert parse_message(utf8)["subject"] == "Grüße 你好"
    assert parse_message(gbk)["subject"] == "你好"


def test_an_unknown_charset_does_not_refuse_the_message() -> None:
    raw = b"From: a@example.org\r\nContent-Type: text/plain; charset=x-nonsense\r\n\r\nhello\r\n"
    assert parse_message(raw)["text"] == "hello"


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Auto_Submitted": "auto-generated; owner-email=x@example.org"},
        {"X_Autoreply": "yes"},
        {"X_Autorespond": "Out of office"},
        {"Precedence": "bulk"},
        {"Precedence": "auto_reply"},
        {"Precedence": "list"},
    ],
)
def test_out_of_office_and_bulk_mail_is_automatic(headers: dict[str, str]) -> None:
    assert parse_message(_mime("Out of office", "I am away", "utf-8", **headers))["automatic"]


def test_auto_submitted_no_is_a_person_writing() -> None:
    fields = parse_message(_mime("Hello", "hi", "utf-8", Auto_Submitted="no"))
    assert fields["automatic"] is False


def test_a_mailer_daemon_bounce_is_automatic() -> None:
    raw = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>\r\n"
        b"Subject: Undelivered Mail\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nIt bounced.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; x@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: me@example.com\r\n"
        b"Subject: original\r\n\r\noriginal body\r\n--b--\r\n"
    )
    fields = parse_message(raw)
    assert fields["automatic"] is True
    assert fields["text"] == "It bounced."
    # The same report from a sender that is not a daemon is still a delivery status.
    other = raw.replace(b"MAILER-DAEMON@mx.example.org", b"relay@example.org")
    assert parse_message(other)["automatic"] is True


def test_a_postmaster_sender_is_automatic() -> None:
    raw = b"From: postmaster@example.org\r\nSubject: note\r\n\r\nx\r\n"
    assert parse_message(raw)["automatic"] is True


REPLY = {
    "text": "We are on it.\nRegards",
    "html": "<p>We are on it.</p><p>Regards</p>",
    "subject": "Re: 打印机坏了 [#42]",
    "to": [{"address": "customer@example.org", "name": "张三"}],
    "thread_id": "t1",
    "message_id": "reply-1@casedesk.example.com",
    "in_reply_to": "second@example.org",
    "references": ["first@example.org"],
    "reply": {},
    "case": {"id": "c", "number": 42, "title": "t"},
    "comment": {"id": "k", "author_name": "Agent"},
}


def test_a_composed_reply_stays_in_the_thread_with_its_own_message_id() -> None:
    raw = compose_reply(REPLY, sender={"address": "support@example.com", "name": "Support"})
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Message-ID"] == "<reply-1@casedesk.example.com>"
    assert parsed["In-Reply-To"] == "<second@example.org>"
    assert parsed["References"] == "<first@example.org> <second@example.org>"
    assert parsed["From"] == "Support <support@example.com>"
    assert parsed["Auto-Submitted"] is None
    assert parsed.get_content_type() == "multipart/alternative"
    assert b"\r\n" in raw
    # Read back as a channel reads mail, it says the same.
    fields = parse_message(raw)
    assert fields["subject"] == "Re: 打印机坏了 [#42]"
    assert fields["to"] == [{"address": "customer@example.org", "name": "张三"}]
    assert fields["text"] == "We are on it.\nRegards"
    assert fields["html"] is not None
    assert "<p>Regards</p>" in fields["html"]
    assert fields["in_reply_to"] == ["second@example.org"]
    assert fields["references"] == ["first@example.org", "second@example.org"]
    assert fields["automatic"] is False


def test_a_reply_casedesk_writes_by_itself_says_it_is_automatic() -> None:
    raw = compose_reply(REPLY, automatic=True)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["From"] is None
    assert parse_message(raw)["automatic"] is True


def test_a_reply_without_a_message_id_gets_one() -> None:
    raw = compose_reply({**REPLY, "message_id": None, "in_reply_to": None, "references": []})
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Message-ID"].startswith("<")
    assert parsed["Message-ID"].endswith(">")
    assert parsed["In-Reply-To"] is None
    assert parsed["References"] is None
