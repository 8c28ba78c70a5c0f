"""The call path only captures an attempt; the flusher makes the redacted record from it.

Whatever waits in the buffer, what leaves the process (the hot tier's documents and the
queue's batches) is redacted, and one capture that cannot be finished stops nothing else.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from prometheus_client import REGISTRY

from casedesk.kit.tracing import new_trace
from casedesk.store.trace_queue import Batch
from casedesk.traces.buffer import TraceBuffer
from casedesk.traces.capture import CapturedAttempt, ExchangeCapture
from casedesk.traces.documents import Document
from casedesk.traces.flusher import TraceFlusher
from casedesk.traces.hot_memory import MemoryHotStore
from casedesk.traces.records import CallOrigin
from casedesk.traces.redaction import REDACTED, Redactor

TENANT = uuid.UUID(int=7)
SECRETS = ("bearer-secret", "key-secret", "at-secret", "pw-secret", "1234", "rt-secret",
           "cookie-secret", "shop-secret")  # fmt: skip
CAPTURE = ExchangeCapture(Redactor.declaring(["pin", "x-shop-pass"]), body_limit=1024)


class KeptQueue:
    """A queue that keeps what it is given, as the broker would receive it."""

    def __init__(self) -> None:
        self.published: list[bytes] = []

    async def start(self) -> None:
        return None

    async def publish(self, batch: Batch) -> None:
        self.published.append(orjson.dumps(batch))

    async def consume(self, handler: object, *, prefetch: int) -> None:
        return None

    async def close(self) -> None:
        return None


def exchange() -> tuple[httpx.Request, httpx.Response]:
    request = httpx.Request(
        "POST",
        "https://api.example.com/v1/login?access_token=at-secret&page=2",
        headers={
            "Authorization": "Bearer bearer-secret",
            "X-Api-Key": "key-secret",
            "X-Shop-Pass": "shop-secret",
        },
        json={"password": "pw-secret", "items": [{"pin": "1234", "sku": "A-1"}]},
    )
    response = httpx.Response(
        200,
        headers={"Set-Cookie": "sid=cookie-secret", "Content-Type": "application/json"},
        json={"refresh_token": "rt-secret", "user": {"name": "Ada"}},
        request=request,
    )
    return request, response


def captured(request: httpx.Request, response: httpx.Response | None) -> CapturedAttempt:
    origin = CallOrigin(
        tenant_id=TENANT, connector="shop", connection_id=None, action="login", execution_id=None
    )
    return CAPTURE.attempt(
        origin=origin,
        span=new_trace(),
        parent_span_id=None,
        attempt=1,
        request=request,
        response=response,
        started_at=datetime.now(UTC),
        duration_ms=3.0,
        ttfb_ms=2.0,
        error=None,
    )


def unfinished_metric() -> float:
    return REGISTRY.get_sample_value("casedesk_trace_records_unfinished_total") or 0.0


async def test_what_leaves_the_process_is_redacted_though_the_buffer_held_it_raw() -> None:
    buffer = TraceBuffer(10)
    hot = MemoryHotStore(ttl=timedelta(hours=1))
    queue = KeptQueue()
    flusher = TraceFlusher(buffer, hot, queue)
    request, response = exchange()
    attempt = captured(request, response)
    buffer.append(attempt)
    assert "bearer-secret" in repr(attempt.request_headers)  # redaction is still to come

    assert await flusher.flush_once() == 1

    (batch,) = queue.published
    doc = await hot.get(TENANT, attempt.id)
    assert doc is not None
    for secret in SECRETS:
        assert secret.encode() not in batch
        assert secret not in orjson.dumps(doc).decode()
    headers = dict(doc["request"]["headers"])
    assert headers["authorization"] == headers["x-api-key"] == headers["x-shop-pass"] == REDACTED
    assert dict(doc["response"]["headers"])["set-cookie"] == REDACTED
    assert doc["request"]["body"]["text"] == (
        '{"password":"[REDACTED]","items":[{"pin":"[REDACTED]","sku":"A-1"}]}'
    )


def test_the_record_has_the_headers_sent_in_its_attempt_not_those_set_later() -> None:
    request, response = exchange()
    attempt = captured(request, response)

    request.headers["traceparent"] = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"  # the next try
    request.headers["authorization"] = "Bearer later-secret"

    record = attempt.finish()
    names = [name for name, _ in record.request_headers]
    assert "traceparent" not in names
    assert "later-secret" not in repr(record)


def test_a_body_over_the_limit_waits_in_the_buffer_already_cut_and_redacted() -> None:
    long_json = orjson.dumps({"password": "pw-secret", "notes": "x" * 5000})
    request = httpx.Request("POST", "https://api.example.com/v1/notes", content=long_json,
                            headers={"content-type": "application/json"})  # fmt: skip
    response = httpx.Response(204, request=request)

    attempt = captured(request, response)

    body = attempt.request_body
    assert body is not None
    assert "pw-secret" not in repr(body)
    assert len(repr(body)) < 2 * CAPTURE.body_limit
    record = attempt.finish()
    assert record.request_body is not None
    assert record.request_body.truncated
    assert record.request_body.size == len(long_json)


def test_drain_gives_the_same_record_as_capturing_it_whole() -> None:
    request, response = exchange()
    attempt = captured(request, response)
    buffer = TraceBuffer(10)
    buffer.append(attempt)

    (drained,) = buffer.drain(10)

    assert drained == attempt.finish()
    assert drained.id == attempt.id


async def test_a_capture_that_cannot_be_finished_is_counted_and_the_others_flow() -> None:
    buffer = TraceBuffer(10)
    hot = MemoryHotStore(ttl=timedelta(hours=1))
    queue = KeptQueue()
    flusher = TraceFlusher(buffer, hot, queue)
    request, response = exchange()
    good = captured(request, response)
    # Headers that do not decode as the encoding they claim: a defect, not a call's fault.
    broken = replace(captured(request, response), request_headers=((b"x", b"\xff"),),
                     request_encoding="ascii")  # fmt: skip
    before = unfinished_metric()
    buffer.append(broken)
    buffer.append(good)

    assert await flusher.flush_once() == 1

    assert unfinished_metric() - before == 1
    docs: list[Document] = orjson.loads(queue.published[0])
    assert [d["id"] for d in docs] == [str(good.id)]


def test_a_document_has_exactly_the_columns_of_the_sql_tier() -> None:
    # PostgreSQL maps a batch's documents onto rows by key (json_populate_recordset), so a
    # column without a key would be written NULL.
    from casedesk.traces.documents import document
    from casedesk.traces.sql import _COLUMNS

    request, response = exchange()

    assert set(document(captured(request, response).finish())) == set(_COLUMNS)
