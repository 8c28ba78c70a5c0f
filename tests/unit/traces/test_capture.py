from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from casedesk.kit.tracing import new_trace
from casedesk.traces.capture import ExchangeCapture
from casedesk.traces.records import CallOrigin
from casedesk.traces.redaction import REDACTED, REDACTED_ENCODED, Redactor

CAPTURE = ExchangeCapture(Redactor(), body_limit=64)


def test_an_empty_body_is_not_kept() -> None:
    assert CAPTURE.body(b"", "application/json") is None


def test_a_text_body_under_the_limit_is_kept_whole() -> None:
    body = CAPTURE.body(b"hello", "text/plain; charset=utf-8")

    assert body is not None
    assert (body.text, body.size, body.truncated, body.sha256) == ("hello", 5, False, None)


def test_a_text_body_at_the_limit_is_not_truncated() -> None:
    body = CAPTURE.body(b"x" * 64, "text/plain")

    assert body is not None
    assert (body.text, body.truncated) == ("x" * 64, False)


def test_a_text_body_over_the_limit_is_cut_and_flagged() -> None:
    body = CAPTURE.body(b"x" * 65, "text/plain")

    assert body is not None
    assert (body.text, body.size, body.truncated) == ("x" * 64, 65, True)


def test_the_cut_never_splits_a_character() -> None:
    body = CAPTURE.body(("a" + "é" * 40).encode(), "text/plain; charset=utf-8")

    assert body is not None
    assert body.text == "a" + "é" * 31
    assert body.truncated


def test_the_charset_is_honoured() -> None:
    body = CAPTURE.body("Grüße".encode("latin-1"), "text/plain; charset=ISO-8859-1")

    assert body is not None
    assert body.text == "Grüße"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"\x89PNG\r\n\x1a\n...", "image/png"),
        (b"%PDF-1.7", "application/pdf"),
        (b"plain bytes", "application/octet-stream"),
        (b"\xff\xfe\x00bad", "text/plain"),
        (b"\xff\xd8\xff\xe0", None),
        (b"a\x00b", None),
        (b"text", "text/plain; charset=no-such-charset"),
    ],
)
def test_a_binary_body_keeps_only_its_size_type_and_hash(
    content: bytes, content_type: str | None
) -> None:
    body = CAPTURE.body(content, content_type)

    assert body is not None
    assert body.text is None
    assert not body.truncated
    assert (body.size, body.content_type) == (len(content), content_type)
    assert body.sha256 == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/problem+json", "APPLICATION/JSON", None]
)
def test_a_json_body_is_redacted(content_type: str | None) -> None:
    body = CAPTURE.body(b'{"token": "t", "n": 1}', content_type)

    assert body is not None
    assert body.text == f'{{"token":"{REDACTED}","n":1}}'


def test_a_json_body_without_secrets_keeps_its_own_spelling() -> None:
    body = CAPTURE.body(b'{ "n": 1,  "ok": true }', "application/json")

    assert body is not None
    assert body.text == '{ "n": 1,  "ok": true }'


def test_a_secret_value_cut_by_the_limit_is_redacted() -> None:
    capture = ExchangeCapture(Redactor(), body_limit=20)

    body = capture.body(b'{"password": "' + b"s" * 100 + b'"}', "application/json")

    assert body is not None
    assert body.text == '{"password": "[REDAC'  # kept as written, the marker cut at the limit
    assert (body.size, body.truncated) == (116, True)


def test_a_body_is_cut_before_it_is_parsed() -> None:
    capture = ExchangeCapture(Redactor(), body_limit=64)
    content = b'{"token": "t1", "rows": [1, 2, 3], "more": "' + b"!" * 10_000 + b'"}'

    body = capture.body(content, "application/json")

    # Only the first 64 bytes were scanned: they keep their own spelling (a parsed and
    # redacted document would be written again without the spaces).
    assert body is not None
    assert body.text == ('{"token": "[REDACTED]", "rows": [1, 2, 3], "more": "' + "!" * 99)[:64]
    assert (body.size, body.truncated) == (len(content), True)


def test_only_the_first_part_of_a_body_may_be_given_with_its_full_size() -> None:
    body = CAPTURE.body(b'{"api_key": "k", "n": 1', "application/json", size=1_000_000)

    assert body is not None
    assert body.text == '{"api_key": "[REDACTED]", "n": 1'
    assert (body.size, body.truncated) == (1_000_000, True)


def test_a_binary_body_read_only_in_part_has_no_hash() -> None:
    body = CAPTURE.body(b"\x89PNG\r\n", "image/png", size=5000)

    assert body is not None
    assert (body.text, body.sha256, body.size) == (None, None, 5000)


def test_redaction_never_makes_the_kept_text_longer_than_the_limit() -> None:
    capture = ExchangeCapture(Redactor(), body_limit=40)
    content = b"[" + b",".join(b'{"pin":1,"sig":2}' for _ in range(3)) + b"]"
    assert len(content) < 64

    body = capture.body(content, "application/json")

    assert body is not None
    assert body.text == '[{"pin":1,"sig":"[REDACTED]"},{"pin":1,"'
    assert body.truncated


DOCUMENT = orjson.dumps(
    {
        "user": {"name": "Ada", "password": "QQQQQQ"},
        "grants": [{"scope": "mail", "access_token": "QQQQQQQQ"}, {"refresh_token": 12345}],
        "credentials": {"user": "ada", "key": "QQQ", "nested": ["QQ", {"QQ": "QQ"}]},
        "note": "tokens are kept apart",
        "api_key": None,
        "apiKey": "QQQQ",
    }
)


@pytest.mark.parametrize("limit", range(1, len(DOCUMENT) + 1))
def test_no_cut_of_a_json_body_leaves_any_part_of_a_secret(limit: int) -> None:
    capture = ExchangeCapture(Redactor(), body_limit=limit)

    body = capture.body(DOCUMENT, "application/json")

    assert body is not None
    assert body.text is not None
    assert "Q" not in body.text
    assert "12345" not in body.text
    assert len(body.text.encode()) <= limit


FORM = b"grant_type=refresh_token&refresh_token=QQQQQQ&client_id=app&client_secret=QQQQ&x=1"


@pytest.mark.parametrize("limit", range(1, len(FORM) + 1))
def test_no_cut_of_a_form_body_leaves_any_part_of_a_secret(limit: int) -> None:
    capture = ExchangeCapture(Redactor(), body_limit=limit)

    body = capture.body(FORM, "application/x-www-form-urlencoded")

    assert body is not None
    assert body.text is not None
    assert "Q" not in body.text


def test_malformed_json_keeps_its_text_but_not_its_secrets() -> None:
    body = CAPTURE.body(b'{"password": "pw"} and then {"token": "t"', "application/json")

    assert body is not None
    assert body.text == '{"password": "[REDACTED]"} and then {"token": "[REDACTED]"'


def test_malformed_json_is_kept_as_text() -> None:
    body = CAPTURE.body(b'{"truncated": ', "application/json")

    assert body is not None
    assert body.text == '{"truncated": '


def test_a_form_body_is_redacted() -> None:
    body = CAPTURE.body(b"user=ada&password=pw", "application/x-www-form-urlencoded")

    assert body is not None
    assert body.text == f"user=ada&password={REDACTED_ENCODED}"


def test_a_record_is_built_from_the_exchange() -> None:
    request = httpx.Request(
        "POST",
        "https://api.example.com/v1/send?api_key=k",
        headers={"Authorization": "Bearer t"},
        json={"to": "ada@example.com"},
    )
    response = httpx.Response(
        202, headers={"content-type": "application/json"}, content=b'{"id":"m-1"}'
    )
    span = new_trace()
    origin = CallOrigin(
        tenant_id=uuid.uuid4(),
        connector="mailer",
        connection_id=None,
        action="send",
        execution_id="e-1",
    )
    started_at = datetime(2026, 1, 1, tzinfo=UTC)

    record = CAPTURE.record(
        origin=origin,
        span=span,
        parent_span_id="00f067aa0ba902b7",
        attempt=2,
        request=request,
        response=response,
        started_at=started_at,
        duration_ms=12.5,
        ttfb_ms=10.0,
        error=None,
    )

    assert record.id.version == 7
    assert (record.trace_id, record.span_id) == (span.trace_id, span.span_id)
    assert (record.tenant_id, record.connector, record.action) == (
        origin.tenant_id,
        "mailer",
        "send",
    )
    assert (record.attempt, record.method, record.status) == (2, "POST", 202)
    assert record.url == f"https://api.example.com/v1/send?api_key={REDACTED_ENCODED}"
    assert ("authorization", REDACTED) in record.request_headers
    assert record.request_body is not None
    assert record.request_body.text == '{"to":"ada@example.com"}'
    assert record.response_body is not None
    assert record.response_body.text == '{"id":"m-1"}'
    assert (record.started_at, record.duration_ms, record.ttfb_ms) == (started_at, 12.5, 10.0)
    assert record.error is None
