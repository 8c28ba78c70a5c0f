"""``smtp.send`` with a ``SendTrace`` leaves one trace record per submission, whatever its
outcome, against the real SMTP server on loopback: an OAuth2 token, like a password, is
never in it; a DKIM signature is only said to be there; a server nobody answers on is a
record without a status."""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from casedesk.integrations import mail
from casedesk.integrations.smtp import DkimKey, SendTrace, SmtpFailed, SmtpServer, send
from casedesk.kit.tracing import new_trace
from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.documents import document
from casedesk.traces.records import CallOrigin, TraceRecord
from tests.support.smtp_server import TOKEN, USER, SmtpTestServer, smtp_server

REPLY = {
    "to": [{"address": "ann@customer.test", "name": "Ann"}],
    "subject": "Re: [#42] My printer is on fire",
    "text": "We are on it, the secret plan.",
    "html": "<p>We are on it, the secret plan.</p>",
    "message_id": "casedesk.42.7@desk.example.test",
    "in_reply_to": "first@customer.test",
    "references": ["first@customer.test"],
}


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[SmtpTestServer]:
    with smtp_server(tmp_path, mode="tls") as server:
        yield server


def _trace(buffer: TraceBuffer) -> SendTrace:
    origin = CallOrigin(
        tenant_id=uuid.uuid4(),
        connector="email",
        connection_id=uuid.uuid4(),
        action="reply",
        execution_id=None,
    )
    return SendTrace(buffer, origin, new_trace(), attempt=3)


def _only(buffer: TraceBuffer) -> TraceRecord:
    (entry,) = buffer.take(10)
    assert isinstance(entry, TraceRecord)
    return entry


async def test_an_oauth2_submission_s_record_has_no_token_and_says_dkim_signed(
    tls: SmtpTestServer,
) -> None:
    buffer = TraceBuffer(10)
    trace = _trace(buffer)
    key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    server = SmtpServer(
        "127.0.0.1",
        tls.port,
        "tls",
        username=USER,
        secret=TOKEN,
        auth="xoauth2",
        tls_ca=tls.ca_pem,
        timeout=10.0,
    )
    raw = mail.compose_reply(REPLY, sender={"address": USER, "name": "Support"})
    await send(
        server,
        raw,
        sender=USER,
        recipients=["ann@customer.test"],
        dkim_key=DkimKey("example.test", "desk", key),
        trace=trace,
    )
    (received,) = tls.messages
    record = _only(buffer)
    assert trace.parent is not None
    assert record.trace_id == trace.parent.trace_id
    assert record.parent_span_id == trace.parent.span_id
    assert record.span_id != trace.parent.span_id
    assert record.attempt == 3
    assert record.status == 250
    headers = dict(record.request_headers)
    assert headers["smtp-security"] == "tls"
    assert headers["smtp-auth"] == "xoauth2"
    assert headers["dkim-signature"] == "present"
    assert record.request_body is not None
    assert record.request_body.sha256 == hashlib.sha256(received.content).hexdigest()
    shown = str(document(record))
    assert TOKEN not in shown
    assert "secret plan" not in shown


async def test_a_server_nobody_answers_on_is_a_record_with_the_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    buffer = TraceBuffer(10)
    server = SmtpServer("127.0.0.1", port, "none", timeout=5.0)
    with pytest.raises(SmtpFailed) as failed:
        await send(
            server,
            b"Subject: hi\r\n\r\nhello\r\n",
            sender=USER,
            recipients=["a@b.test"],
            trace=_trace(buffer),
        )
    record = _only(buffer)
    assert record.status is None
    assert record.error is not None
    assert record.error.message == failed.value.answer
    assert "could not be reached" in record.error.message
    assert record.url == f"smtp://127.0.0.1:{port}"
    assert dict(record.request_headers)["smtp-auth"] == "none"
