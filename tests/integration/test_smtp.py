"""Sending mail to a real SMTP server on loopback (aiosmtpd, tests/support/smtp_server.py)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from casedesk.integrations import mail
from casedesk.integrations.smtp import DkimKey, SmtpFailed, SmtpServer, check, send, sign
from tests.support.smtp_server import PASSWORD, TOKEN, USER, SmtpTestServer, smtp_server

REPLY = {
    "to": [{"address": "ann@customer.test", "name": "Ann"}],
    "subject": "Re: [#42] My printer is on fire",
    "text": "We are on it.",
    "html": "<p>We are on it.</p>",
    "message_id": "casedesk.42.7@desk.example.test",
    "in_reply_to": "first@customer.test",
    "references": ["first@customer.test"],
}
SENDER = {"address": "desk@example.test", "name": "Support"}


@pytest.fixture
def starttls(tmp_path: Path) -> Iterator[SmtpTestServer]:
    with smtp_server(tmp_path, mode="starttls") as server:
        yield server


def _server(test_server: SmtpTestServer, **overrides: object) -> SmtpServer:
    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": test_server.port,
        "security": "starttls",
        "username": USER,
        "secret": PASSWORD,
        "tls_ca": test_server.ca_pem,
        "timeout": 10.0,
    }
    options.update(overrides)
    return SmtpServer(**options)  # type: ignore[arg-type]


async def test_a_reply_arrives_with_what_threads_it(starttls: SmtpTestServer) -> None:
    raw = mail.compose_reply(REPLY, sender=SENDER)
    accepted = await send(
        _server(starttls), raw, sender=SENDER["address"], recipients=["ann@customer.test"]
    )
    assert accepted.recipients == ["ann@customer.test"]
    assert accepted.refused == {}
    assert "accepted" in accepted.answer.lower()
    (received,) = starttls.messages
    assert received.mail_from == "desk@example.test"
    assert received.rcpt_tos == ["ann@customer.test"]
    message = email.message_from_bytes(received.content, policy=email.policy.default)
    assert message["Message-ID"] == "<casedesk.42.7@desk.example.test>"
    assert message["In-Reply-To"] == "<first@customer.test>"
    assert message["References"] == "<first@customer.test>"
    assert message["Subject"] == "Re: [#42] My printer is on fire"
    assert message.get_content_type() == "multipart/alternative"
    assert "Auto-Submitted" not in message


async def test_implicit_tls_with_an_oauth2_token(tmp_path: Path) -> None:
    with smtp_server(tmp_path, mode="tls") as server:
        target = _server(server, security="tls", auth="xoauth2", secret=TOKEN)
        await send(target, b"Subject: hi\r\n\r\nhello\r\n", sender=USER, recipients=["a@b.test"])
        assert [m.rcpt_tos for m in server.messages] == [["a@b.test"]]
        with pytest.raises(SmtpFailed) as refused:
            await send(
                _server(server, security="tls", auth="xoauth2", secret="ya29.expired"),
                b"Subject: hi\r\n\r\nhello\r\n",
                sender=USER,
                recipients=["a@b.test"],
            )
    assert not refused.value.transient
    assert refused.value.code == 535
    assert len(server.messages) == 1


async def test_starttls_asked_for_is_never_skipped(tmp_path: Path) -> None:
    with smtp_server(tmp_path, mode="none", auth=False) as server:
        with pytest.raises(SmtpFailed, match="does not offer STARTTLS") as failed:
            await send(
                _server(server, username=None), b"\r\nx", sender=USER, recipients=["a@b.test"]
            )
        assert not failed.value.transient
        assert server.messages == []
        # Asked for no TLS, to a relay without login: it goes.
        await send(
            _server(server, security="none", username=None),
            b"Subject: s\r\n\r\nx\r\n",
            sender=USER,
            recipients=["a@b.test"],
        )
        assert len(server.messages) == 1


async def test_no_password_in_clear_text_beyond_loopback() -> None:
    target = SmtpServer(host="192.0.2.10", port=25, security="none", username=USER, secret="x")
    with pytest.raises(SmtpFailed, match="clear text"):
        await send(target, b"\r\nx", sender=USER, recipients=["a@b.test"])


async def test_a_wrong_password_is_final(starttls: SmtpTestServer) -> None:
    with pytest.raises(SmtpFailed, match="refused the login") as failed:
        await send(
            _server(starttls, secret="wrong"), b"\r\nx", sender=USER, recipients=["a@b.test"]
        )
    assert not failed.value.transient
    assert failed.value.code == 535
    assert starttls.messages == []


async def test_refused_recipients_say_whether_to_retry(starttls: SmtpTestServer) -> None:
    raw = b"Subject: s\r\n\r\nx\r\n"
    with pytest.raises(SmtpFailed, match="550") as gone:
        await send(_server(starttls), raw, sender=USER, recipients=["refuse-550@x.test"])
    assert not gone.value.transient
    with pytest.raises(SmtpFailed, match="450") as busy:
        await send(_server(starttls), raw, sender=USER, recipients=["busy-450@x.test"])
    assert busy.value.transient
    some = await send(
        _server(starttls), raw, sender=USER, recipients=["ok@x.test", "refuse-550@x.test"]
    )
    assert some.recipients == ["ok@x.test"]
    assert some.refused["refuse-550@x.test"].startswith("550")
    assert [m.rcpt_tos for m in starttls.messages] == [["ok@x.test"]]


async def test_an_untrusted_certificate_and_a_closed_port(starttls: SmtpTestServer) -> None:
    with pytest.raises(SmtpFailed, match=r"(?i)certificate"):
        await send(_server(starttls, tls_ca=None), b"\r\nx", sender=USER, recipients=["a@b.test"])
    with pytest.raises(SmtpFailed, match="could not be reached") as closed:
        await send(
            _server(starttls, port=1, timeout=3.0), b"\r\nx", sender=USER, recipients=["a@b"]
        )
    assert closed.value.transient
    assert starttls.messages == []


async def test_check_reports_what_the_server_said(starttls: SmtpTestServer) -> None:
    answer = await check(_server(starttls))
    assert answer.greeting.startswith("250")
    assert answer.authenticated
    assert answer.tls
    assert any(extension.startswith("AUTH") for extension in answer.extensions)
    with pytest.raises(SmtpFailed, match="535"):
        await check(_server(starttls, secret="wrong"))
    assert starttls.messages == []


def _rsa_key() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


async def test_a_dkim_signed_message_verifies(starttls: SmtpTestServer) -> None:
    private, public = _rsa_key()
    key = DkimKey(domain="example.test", selector="desk", private_key=private)
    raw = mail.compose_reply(REPLY, sender=SENDER)
    await send(_server(starttls), raw, sender=USER, recipients=["ann@customer.test"], dkim_key=key)
    (received,) = starttls.messages
    record = b"v=DKIM1; k=rsa; p=" + __import__("base64").b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"desk._domainkey.example.test." else b""

    assert received.content.startswith(b"DKIM-Signature:")
    assert dkim.verify(received.content, dnsfunc=dns)
    tampered = received.content.replace(b"We are on it.", b"We are not on it.")
    assert not dkim.verify(tampered, dnsfunc=dns)
    header = received.content.split(b"\r\n\r\n", 1)[0].lower()
    assert b"h=from:to:subject:date:message-id:in-reply-to:references" in header.replace(
        b"\r\n", b""
    ).replace(b" ", b"").replace(b"\t", b"")


def test_a_key_that_cannot_sign_is_a_clear_error() -> None:
    key = DkimKey(domain="example.test", selector="desk", private_key=b"not a key")
    with pytest.raises(SmtpFailed, match="DKIM key"):
        sign(b"From: a@b.test\r\nSubject: s\r\n\r\nx\r\n", key)
