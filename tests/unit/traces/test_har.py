from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from casedesk.traces.documents import document, record_of
from casedesk.traces.har import har_log
from casedesk.traces.records import CallFailure, CapturedBody, TraceRecord
from casedesk.traces.redaction import REDACTED, REDACTED_ENCODED
from tests.support.har import har_validator

STARTED = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

JSON_BODY = CapturedBody(
    size=57,
    content_type="application/json; charset=utf-8",
    text='{"tickets":[{"id":42,"subject":"Printer jam"}],"count":1}',
    truncated=False,
    sha256=None,
)
FORM_BODY = CapturedBody(
    size=54,
    content_type="application/x-www-form-urlencoded",
    text=f"subject=Printer+jam&priority=high&client_secret={REDACTED_ENCODED}",
    truncated=False,
    sha256=None,
)

JSON_EXCHANGE = TraceRecord(
    id=uuid.UUID("01956d3c-8f1a-7b2c-9d4e-5f6a7b8c9d0e"),
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    span_id="00f067aa0ba902b7",
    parent_span_id="a3ce929d0e0e4736",
    tenant_id=uuid.UUID("6f1c0e0a-3b5d-4e8f-9a7b-2c4d6e8f0a1b"),
    execution_id="wf-7f3a",
    connection_id=uuid.UUID("9d2e4f6a-8b0c-4d1e-a3f5-b7c9d1e3f5a7"),
    connector="zendesk",
    action="list_tickets",
    attempt=1,
    method="GET",
    url=(
        "https://acme.zendesk.example/api/v2/tickets.json"
        f"?status=open&sort_by=updated_at&page=2&access_token={REDACTED_ENCODED}&q=printer+jam%21&empty="
    ),
    request_headers=(
        ("host", "acme.zendesk.example"),
        ("accept", "application/json"),
        ("authorization", REDACTED),
        ("cookie", REDACTED),
        ("user-agent", "casedesk/1.4.0"),
    ),
    request_body=None,
    status=200,
    response_headers=(
        ("content-type", "application/json; charset=utf-8"),
        ("set-cookie", REDACTED),
        ("x-request-id", "req-81f2"),
    ),
    response_body=JSON_BODY,
    started_at=STARTED,
    duration_ms=250.5,
    ttfb_ms=180.25,
    error=None,
)

FORM_POST = replace(
    JSON_EXCHANGE,
    id=uuid.UUID("01956d3c-8f1a-7b2c-9d4e-000000000002"),
    action="create_ticket",
    method="POST",
    url="https://acme.zendesk.example/api/v2/tickets",
    request_headers=(
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", "54"),
    ),
    request_body=FORM_BODY,
    status=201,
    response_headers=(("content-type", "application/json"),),
    response_body=CapturedBody(
        size=9,
        content_type="application/json",
        text='{"id":43}',
        truncated=False,
        sha256=None,
    ),
)

BINARY_DOWNLOAD = replace(
    JSON_EXCHANGE,
    id=uuid.UUID("01956d3c-8f1a-7b2c-9d4e-000000000003"),
    action="download_attachment",
    url="https://acme.zendesk.example/attachments/token/x7Yq/logo.png",
    response_headers=(("content-type", "image/png"), ("content-length", str(len(PNG)))),
    response_body=CapturedBody(
        size=len(PNG),
        content_type="image/png",
        text=None,
        truncated=False,
        sha256=hashlib.sha256(PNG).hexdigest(),
    ),
)

TRUNCATED_EXPORT = replace(
    JSON_EXCHANGE,
    id=uuid.UUID("01956d3c-8f1a-7b2c-9d4e-000000000004"),
    action="export_tickets",
    url="https://acme.zendesk.example/api/v2/exports/tickets.csv",
    response_headers=(("content-type", "text/csv"),),
    response_body=CapturedBody(
        size=20_480,
        content_type="text/csv",
        text="id,subject\n42,Printer jam\n43,VPN dö",
        truncated=True,
        sha256=None,
    ),
)

FAILED_ATTEMPT = replace(
    JSON_EXCHANGE,
    id=uuid.UUID("01956d3c-8f1a-7b2c-9d4e-000000000005"),
    attempt=2,
    status=None,
    response_headers=(),
    response_body=None,
    duration_ms=5003.75,
    ttfb_ms=None,
    error=CallFailure(type="ConnectTimeout", message="timed out connecting to acme.zendesk"),
)

REDIRECT = replace(
    JSON_EXCHANGE,
    id=uuid.UUID("01956d3c-8f1a-7b2c-9d4e-000000000006"),
    action="download_attachment",
    url="https://acme.zendesk.example/attachments/token/x7Yq",
    status=302,
    response_headers=(
        ("content-type", "text/html"),
        ("location", "https://cdn.zendesk.example/x7Yq/logo.png?sig=" + REDACTED),
    ),
    response_body=None,
)

EVERY_KIND = (JSON_EXCHANGE, FORM_POST, BINARY_DOWNLOAD, TRUNCATED_EXPORT, FAILED_ATTEMPT, REDIRECT)


def _har(*records: TraceRecord) -> dict[str, Any]:
    return har_log([document(record) for record in records], version="1.4.0")


def _entry(record: TraceRecord) -> dict[str, Any]:
    entry: dict[str, Any] = _har(record)["log"]["entries"][0]
    return entry


HAR = har_validator()


def test_a_log_of_every_kind_of_record_is_valid_har_1_2() -> None:
    har = json.loads(json.dumps(_har(*EVERY_KIND)))

    HAR.validate(har)
    # The schema names formats jsonschema cannot check without extra packages.
    for entry in har["log"]["entries"]:
        assert datetime.fromisoformat(entry["startedDateTime"]).utcoffset() is not None
        assert urlsplit(entry["request"]["url"]).scheme == "https"


def test_the_schema_follows_its_references_and_rejects_what_is_not_har() -> None:
    har = _har(JSON_EXCHANGE)
    har["log"]["entries"][0]["response"]["status"] = "200"

    with pytest.raises(jsonschema.ValidationError, match="'200' is not of type 'integer'"):
        HAR.validate(har)


def test_the_log_is_made_by_casedesk_with_one_entry_per_document_in_order() -> None:
    log = _har(*EVERY_KIND)["log"]

    assert log["version"] == "1.2"
    assert log["creator"] == {"name": "casedesk", "version": "1.4.0"}
    assert log["pages"] == []
    assert [e["_casedesk"]["record_id"] for e in log["entries"]] == [
        str(record.id) for record in EVERY_KIND
    ]


def test_no_documents_make_an_empty_log() -> None:
    assert har_log([], version="1.4.0")["log"]["entries"] == []


def test_a_json_exchange_keeps_its_request_as_sent() -> None:
    request = _entry(JSON_EXCHANGE)["request"]

    assert request == {
        "method": "GET",
        "url": JSON_EXCHANGE.url,
        "httpVersion": "HTTP/1.1",
        "cookies": [{"name": "", "value": REDACTED}],
        "headers": [
            {"name": "host", "value": "acme.zendesk.example"},
            {"name": "accept", "value": "application/json"},
            {"name": "authorization", "value": REDACTED},
            {"name": "cookie", "value": REDACTED},
            {"name": "user-agent", "value": "casedesk/1.4.0"},
        ],
        "queryString": [
            {"name": "status", "value": "open"},
            {"name": "sort_by", "value": "updated_at"},
            {"name": "page", "value": "2"},
            {"name": "access_token", "value": REDACTED},
            {"name": "q", "value": "printer jam!"},
            {"name": "empty", "value": ""},
        ],
        "headersSize": -1,
        "bodySize": 0,
    }


def test_a_json_exchange_keeps_its_response_as_received() -> None:
    response = _entry(JSON_EXCHANGE)["response"]

    assert response == {
        "status": 200,
        "statusText": "OK",
        "httpVersion": "HTTP/1.1",
        "cookies": [{"name": "", "value": REDACTED}],
        "headers": [
            {"name": "content-type", "value": "application/json; charset=utf-8"},
            {"name": "set-cookie", "value": REDACTED},
            {"name": "x-request-id", "value": "req-81f2"},
        ],
        "content": {
            "size": 57,
            "mimeType": "application/json; charset=utf-8",
            "text": '{"tickets":[{"id":42,"subject":"Printer jam"}],"count":1}',
        },
        "redirectURL": "",
        "headersSize": -1,
        "bodySize": 57,
        "_error": None,
    }


def test_an_entry_starts_when_the_attempt_did_with_its_zone() -> None:
    entry = _entry(JSON_EXCHANGE)

    assert entry["startedDateTime"] == "2026-03-01T09:30:00.123456+00:00"
    assert entry["cache"] == {}
    assert "serverIPAddress" not in entry
    assert "connection" not in entry


def test_a_start_in_another_zone_is_written_in_utc() -> None:
    local = STARTED.astimezone(timezone(timedelta(hours=2)))

    entry = _entry(replace(JSON_EXCHANGE, started_at=local))

    assert entry["startedDateTime"] == "2026-03-01T09:30:00.123456+00:00"


def test_the_time_to_first_byte_is_waiting_and_the_rest_receiving() -> None:
    entry = _entry(JSON_EXCHANGE)

    assert entry["timings"] == {
        "blocked": -1,
        "dns": -1,
        "connect": -1,
        "ssl": -1,
        "send": 0,
        "wait": 180.25,
        "receive": 70.25,
    }
    assert entry["time"] == 250.5


@pytest.mark.parametrize(
    ("duration_ms", "ttfb_ms"),
    [(0.3, 0.1), (1234.5678, 0.7), (250.5, None), (10.0, 12.5), (0.0, 0.0)],
)
def test_the_timings_always_add_up_to_the_time(duration_ms: float, ttfb_ms: float | None) -> None:
    entry = _entry(replace(JSON_EXCHANGE, duration_ms=duration_ms, ttfb_ms=ttfb_ms))
    timings = entry["timings"]

    assert timings["send"] + timings["wait"] + timings["receive"] == entry["time"]
    assert entry["time"] == pytest.approx(duration_ms)
    assert timings["receive"] >= 0


def test_without_a_time_to_first_byte_the_whole_attempt_is_waiting() -> None:
    timings = _entry(replace(JSON_EXCHANGE, ttfb_ms=None))["timings"]

    assert (timings["wait"], timings["receive"]) == (250.5, 0)


def test_a_time_to_first_byte_past_the_end_is_capped_at_the_duration() -> None:
    timings = _entry(replace(JSON_EXCHANGE, duration_ms=10.0, ttfb_ms=12.5))["timings"]

    assert (timings["wait"], timings["receive"]) == (10.0, 0)


def test_the_entry_says_which_call_made_it() -> None:
    assert _entry(JSON_EXCHANGE)["_casedesk"] == {
        "record_id": "01956d3c-8f1a-7b2c-9d4e-5f6a7b8c9d0e",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "parent_span_id": "a3ce929d0e0e4736",
        "execution_id": "wf-7f3a",
        "connection_id": "9d2e4f6a-8b0c-4d1e-a3f5-b7c9d1e3f5a7",
        "connector": "zendesk",
        "action": "list_tickets",
        "attempt": 1,
        "error": None,
    }


def test_a_call_outside_a_connection_and_workflow_has_null_origins() -> None:
    record = replace(
        JSON_EXCHANGE, connection_id=None, execution_id=None, action=None, parent_span_id=None
    )

    origin = _entry(record)["_casedesk"]

    assert (
        origin["connection_id"],
        origin["execution_id"],
        origin["action"],
        origin["parent_span_id"],
    ) == (None, None, None, None)


def test_a_form_post_keeps_its_body_as_post_data() -> None:
    entry = _entry(FORM_POST)

    assert entry["request"]["method"] == "POST"
    assert entry["request"]["queryString"] == []
    assert entry["request"]["bodySize"] == 54
    assert entry["request"]["postData"] == {
        "mimeType": "application/x-www-form-urlencoded",
        "text": f"subject=Printer+jam&priority=high&client_secret={REDACTED_ENCODED}",
    }
    assert (entry["response"]["status"], entry["response"]["statusText"]) == (201, "Created")


def test_a_binary_request_body_is_described_not_kept() -> None:
    upload = CapturedBody(
        size=len(PNG),
        content_type="image/png",
        text=None,
        truncated=False,
        sha256=hashlib.sha256(PNG).hexdigest(),
    )

    request = _entry(replace(FORM_POST, request_body=upload))["request"]

    assert request["bodySize"] == len(PNG)
    assert request["postData"] == {
        "mimeType": "image/png",
        "text": "",
        "comment": f"binary body of {len(PNG)} bytes not kept; sha256 {upload.sha256}",
    }


def test_a_request_body_without_a_content_type_has_an_empty_mime_type() -> None:
    body = replace(FORM_BODY, content_type=None)

    post_data = _entry(replace(FORM_POST, request_body=body))["request"]["postData"]

    assert post_data["mimeType"] == ""


def test_a_binary_response_is_described_by_size_and_hash() -> None:
    response = _entry(BINARY_DOWNLOAD)["response"]

    assert response["content"] == {
        "size": len(PNG),
        "mimeType": "image/png",
        "comment": (
            f"binary body of {len(PNG)} bytes not kept; sha256 {hashlib.sha256(PNG).hexdigest()}"
        ),
    }
    assert response["bodySize"] == len(PNG)


def test_a_truncated_body_keeps_its_full_size_and_says_it_was_cut() -> None:
    response = _entry(TRUNCATED_EXPORT)["response"]

    kept = len("id,subject\n42,Printer jam\n43,VPN dö".encode())
    assert response["content"] == {
        "size": 20_480,
        "mimeType": "text/csv",
        "text": "id,subject\n42,Printer jam\n43,VPN dö",
        "comment": f"truncated: the trace kept {kept} bytes of a 20480-byte body",
    }
    assert response["bodySize"] == 20_480


def test_a_truncated_request_body_says_it_was_cut() -> None:
    body = replace(FORM_BODY, size=5_000, truncated=True)

    post_data = _entry(replace(FORM_POST, request_body=body))["request"]["postData"]

    assert post_data["comment"] == "truncated: the trace kept 62 bytes of a 5000-byte body"


def test_an_attempt_without_a_response_is_written_as_chrome_writes_a_failed_request() -> None:
    entry = _entry(FAILED_ATTEMPT)

    assert entry["response"] == {
        "status": 0,
        "statusText": "",
        "httpVersion": "",
        "cookies": [],
        "headers": [],
        "content": {"size": 0, "mimeType": "x-unknown"},
        "redirectURL": "",
        "headersSize": -1,
        "bodySize": -1,
        "_error": "timed out connecting to acme.zendesk",
    }
    assert entry["_casedesk"]["error"] == {
        "type": "ConnectTimeout",
        "message": "timed out connecting to acme.zendesk",
    }
    assert entry["_casedesk"]["attempt"] == 2
    assert (entry["time"], entry["timings"]["wait"], entry["timings"]["receive"]) == (
        5003.75,
        5003.75,
        0,
    )


def test_a_failed_attempt_still_shows_what_was_sent() -> None:
    request = _entry(FAILED_ATTEMPT)["request"]

    assert request["url"] == JSON_EXCHANGE.url
    assert len(request["headers"]) == len(JSON_EXCHANGE.request_headers)


def test_a_redirect_points_to_its_location() -> None:
    response = _entry(REDIRECT)["response"]

    assert (response["status"], response["statusText"]) == (302, "Found")
    assert response["redirectURL"] == f"https://cdn.zendesk.example/x7Yq/logo.png?sig={REDACTED}"
    # No body was received, but the declared type is still told.
    assert response["content"] == {"size": 0, "mimeType": "text/html"}
    assert response["bodySize"] == 0


def test_a_response_without_body_or_type_is_of_unknown_type() -> None:
    response = _entry(replace(JSON_EXCHANGE, status=204, response_headers=(), response_body=None))[
        "response"
    ]

    assert (response["statusText"], response["content"]) == (
        "No Content",
        {"size": 0, "mimeType": "x-unknown"},
    )


def test_a_body_without_a_content_type_is_of_unknown_type() -> None:
    body = replace(JSON_BODY, content_type=None)

    content = _entry(replace(JSON_EXCHANGE, response_headers=(), response_body=body))["response"][
        "content"
    ]

    assert content["mimeType"] == "x-unknown"


def test_a_status_without_a_standard_reason_has_an_empty_status_text() -> None:
    response = _entry(replace(JSON_EXCHANGE, status=599))["response"]

    assert (response["status"], response["statusText"]) == (599, "")


def test_cookies_are_read_from_every_cookie_header() -> None:
    headers = (("cookie", "_zendesk_session=abc; locale=de"), ("cookie", "theme=dark;"))

    cookies = _entry(replace(JSON_EXCHANGE, request_headers=headers))["request"]["cookies"]

    assert cookies == [
        {"name": "_zendesk_session", "value": "abc"},
        {"name": "locale", "value": "de"},
        {"name": "theme", "value": "dark"},
    ]


def test_each_set_cookie_header_sets_one_cookie_without_its_attributes() -> None:
    headers = (
        ("set-cookie", "_zendesk_session=abc; Path=/; Secure; HttpOnly"),
        ("set-cookie", "locale=de"),
    )

    cookies = _entry(replace(JSON_EXCHANGE, response_headers=headers))["response"]["cookies"]

    assert cookies == [
        {"name": "_zendesk_session", "value": "abc"},
        {"name": "locale", "value": "de"},
    ]


def test_no_cookie_headers_mean_no_cookies() -> None:
    entry = _entry(FORM_POST)

    assert (entry["request"]["cookies"], entry["response"]["cookies"]) == ([], [])


@pytest.mark.parametrize("encoding", ["gzip", "br", "GZIP"])
def test_an_encoded_response_has_an_unknown_transfer_size(encoding: str) -> None:
    headers = (*JSON_EXCHANGE.response_headers, ("content-encoding", encoding))

    response = _entry(replace(JSON_EXCHANGE, response_headers=headers))["response"]

    assert response["bodySize"] == -1
    assert response["content"]["size"] == 57


@pytest.mark.parametrize("encoding", ["identity", "Identity"])
def test_an_identity_encoded_response_keeps_its_size(encoding: str) -> None:
    headers = (*JSON_EXCHANGE.response_headers, ("content-encoding", encoding))

    response = _entry(replace(JSON_EXCHANGE, response_headers=headers))["response"]

    assert response["bodySize"] == 57


@pytest.mark.parametrize(
    "record", EVERY_KIND, ids=["json", "form", "binary", "truncated", "failed", "redirect"]
)
def test_a_document_read_back_exports_the_same(record: TraceRecord) -> None:
    doc = document(record)

    assert har_log([doc], version="1.4.0") == har_log([document(record_of(doc))], version="1.4.0")
