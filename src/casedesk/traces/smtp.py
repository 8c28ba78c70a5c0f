"""One SMTP submission as a trace record, in the same shape as an HTTP call's.

A submission is method ``SMTP`` to ``smtp://host:port``. Its request "headers" are the
server's security and login kind (``smtp-security``, ``smtp-auth``, ``smtp-username``), the
envelope (``mail-from``, one ``rcpt-to`` per recipient) and the message's own headers a
reader of the trace needs (From, To, Cc, Subject, Message-ID, In-Reply-To, References,
Auto-Submitted), with ``dkim-signature`` only saying ``present`` or ``absent``. The message
itself is kept only as its size and SHA-256 (what was handed to DATA, signed): a customer's
mail never sits in a trace. The status is the server's final reply code (250 when it took the
message, the refusal's code otherwise, none when it could not be reached) and the response
body its text. No password or OAuth2 token is ever part of a record: the login is not
captured at all.
"""

from __future__ import annotations

import email.policy
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser

from casedesk.kit.ids import uuid7
from casedesk.kit.tracing import TraceContext
from casedesk.traces.records import CallFailure, CallOrigin, CapturedBody, TraceRecord

METHOD = "SMTP"
MESSAGE_HEADERS = (
    "from",
    "to",
    "cc",
    "subject",
    "message-id",
    "in-reply-to",
    "references",
    "auto-submitted",
)
"""The message headers a submission's record shows, in this order."""
_HEADER_VALUE_MAX = 998


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """What was submitted, and to where; secrets are not part of it."""

    host: str
    port: int
    security: str
    auth: str
    """``password``, ``xoauth2`` or ``none``."""
    username: str | None
    sender: str
    recipients: Sequence[str]
    message: bytes
    """The message as handed to DATA (after signing)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How it ended: the server's reply code and text, refused recipients, or a failure."""

    code: int | None
    answer: str
    refused: dict[str, str]
    failure: str | None
    """Why the submission failed; None when the server took the message."""


def message_headers(message: bytes) -> list[tuple[str, str]]:
    """The shown headers of ``message``, decoded, plus whether it carries a DKIM signature."""
    parsed = BytesHeaderParser(policy=email.policy.default).parsebytes(message)
    shown: list[tuple[str, str]] = []
    for name in MESSAGE_HEADERS:
        for value in parsed.get_all(name) or []:
            shown.append((name, " ".join(str(value).split())[:_HEADER_VALUE_MAX]))
    signed = parsed.get("dkim-signature") is not None
    shown.append(("dkim-signature", "present" if signed else "absent"))
    return shown


def smtp_record(
    *,
    origin: CallOrigin,
    span: TraceContext,
    parent_span_id: str | None,
    attempt: int,
    submission: Submission,
    outcome: Outcome,
    started_at: datetime,
    duration_ms: float,
    record_id: uuid.UUID | None = None,
) -> TraceRecord:
    """The finished (already redacted) record of one submission."""
    request: list[tuple[str, str]] = [
        ("smtp-security", submission.security),
        ("smtp-auth", submission.auth),
    ]
    if submission.username is not None:
        request.append(("smtp-username", submission.username))
    request.append(("mail-from", submission.sender))
    request.extend(("rcpt-to", recipient) for recipient in submission.recipients)
    request.extend(_safe_headers(submission.message))
    response = [("refused", f"{who}: {said}") for who, said in outcome.refused.items()]
    answer = outcome.answer.encode()
    return TraceRecord(
        id=record_id or uuid7(),
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=parent_span_id,
        tenant_id=origin.tenant_id,
        execution_id=origin.execution_id,
        connection_id=origin.connection_id,
        connector=origin.connector,
        action=origin.action,
        attempt=attempt,
        method=METHOD,
        url=f"smtp://{_host(submission.host)}:{submission.port}",
        request_headers=tuple(request),
        request_body=CapturedBody(
            size=len(submission.message),
            content_type="message/rfc822",
            text=None,
            truncated=False,
            sha256=hashlib.sha256(submission.message).hexdigest(),
        )
        if submission.message
        else None,
        status=outcome.code,
        response_headers=tuple(response),
        response_body=CapturedBody(
            size=len(answer),
            content_type="text/plain; charset=utf-8",
            text=outcome.answer,
            truncated=False,
            sha256=None,
        )
        if answer
        else None,
        started_at=started_at,
        duration_ms=duration_ms,
        ttfb_ms=None,
        error=None
        if outcome.failure is None
        else CallFailure(type="SmtpFailed", message=outcome.failure),
    )


def _safe_headers(message: bytes) -> list[tuple[str, str]]:
    try:
        return message_headers(message)
    except Exception as exc:  # a header the parser cannot read: the record still goes
        return [("x-unreadable-headers", type(exc).__name__)]


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
