"""The action-trace viewer over HTTP: the list newest first with its filters, cursor and an
execution's waterfall; one call with every redacted value marked and no secret; the HAR
download, valid against the HAR schema; tenancy and roles; and the case page's links from a
channel's message to the calls of the execution that brought it in, and from a reply to the
calls of its delivery."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import orjson
import pytest

from casedesk.bootstrap import Container
from casedesk.domain.identity.roles import Role
from casedesk.kit.tracing import new_trace
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.traces import sql
from casedesk.traces.capture import ExchangeCapture
from casedesk.traces.documents import Document, document
from casedesk.traces.records import CallOrigin
from casedesk.traces.redaction import Redactor
from tests.conftest import TenantHandle, Tenants
from tests.integration.platform.test_channels import _channel, _mail
from tests.support.cases import Desk
from tests.support.har import har_validator
from tests.support.http_server import LocalHTTPServer, local_http_server
from tests.support.web import signed_in

pytestmark = pytest.mark.backends("sqlite")

SECRETS = ("Bearer sk-live-4242", "hunter2-pass", "qk-9999", "tok-abcdef")
CAPTURE = ExchangeCapture(redactor=Redactor(), body_limit=65_536)


def _call(
    tenant_id: uuid.UUID,
    *,
    started_at: datetime,
    execution_id: str | None = "exec-a",
    connection_id: uuid.UUID | None = None,
    status: int | None = 200,
    path: str = "/v1/orders",
    attempt: int = 1,
    trace_id: str | None = None,
) -> Document:
    """A call as the hub records it: a real request and response through the capture, whose
    secrets (a header, a query parameter, body fields) the redactor replaces."""
    request = httpx.Request(
        "POST",
        f"https://api.example.com{path}?api_key=qk-9999&page=2",
        headers={"Authorization": "Bearer sk-live-4242", "Accept": "application/json"},
        json={"name": "Ann", "password": "hunter2-pass"},
    )
    response = None
    if status is not None:
        response = httpx.Response(
            status,
            json={"id": 7, "access_token": "tok-abcdef"},
            request=request,
        )
    trace = new_trace()
    span = trace.child()
    record = CAPTURE.record(
        origin=CallOrigin(
            tenant_id=tenant_id,
            connector="shop",
            connection_id=connection_id,
            action="create_order",
            execution_id=execution_id,
        ),
        span=span,
        parent_span_id=trace.span_id,
        attempt=attempt,
        request=request,
        response=response,
        started_at=started_at,
        duration_ms=40.0,
        ttfb_ms=None if status is None else 30.0,
        error=None if status is not None else ConnectionRefusedError("refused"),
    )
    doc = document(record)
    if trace_id is not None:
        doc |= {"trace_id": trace_id, "parent_span_id": "a" * 16}
    return doc


async def _store(container: Container, hot: list[Document], durable: list[Document]) -> None:
    """Some records still in the hot tier only, the others in SQL only: a page reads both."""
    async with UnitOfWork(container.database) as uow:
        await uow.begin_write()
        await sql.write_batch(uow.session, durable)
        await uow.commit()
    await container.hot.put_many(hot)


def _ids(page: str) -> list[str]:
    """The calls a list page shows, in its order."""
    return re.findall(
        r'<tr class="call[^"]*">\s*<td><a href="/app/admin/traces/([0-9a-f-]+)"', page
    )


@pytest.fixture
async def admin(client: httpx.AsyncClient, tenants: Tenants) -> TenantHandle:
    tenant = await tenants.create()
    await signed_in(client, tenant, tenant.admin_id)
    return tenant


async def test_the_list_is_newest_first_filtered_paged_with_the_executions_waterfall(
    client: httpx.AsyncClient, admin: TenantHandle, container: Container
) -> None:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    connection = uuid.uuid4()
    ran = [
        _call(admin.id, started_at=base + timedelta(seconds=i), connection_id=connection)
        for i in range(3)
    ]
    failed = _call(
        admin.id, started_at=base + timedelta(seconds=10), execution_id="exec-b", status=None
    )
    many = [
        _call(admin.id, started_at=base - timedelta(minutes=1, seconds=i), execution_id=None)
        for i in range(50)
    ]
    await _store(container, hot=[*ran, failed], durable=many)

    page = await client.get("/app/admin/traces")
    assert page.status_code == 200
    shown = _ids(page.text)
    assert shown == [failed["id"], *[d["id"] for d in reversed(ran)], *[d["id"] for d in many[:46]]]
    assert "api.example.com/v1/orders" in page.text
    older = re.search(r'href="/app/admin/traces\?(cursor=[^"]+)" rel="next"', page.text)
    assert older is not None
    rest = await client.get(f"/app/admin/traces?{unescape(older.group(1))}")
    assert _ids(rest.text) == [d["id"] for d in many[46:]]

    by_execution = await client.get("/app/admin/traces", params={"execution": "exec-a"})
    assert set(_ids(by_execution.text)) == {d["id"] for d in ran}
    assert "Waterfall of the execution" in by_execution.text
    assert by_execution.text.count('class="wf-bar') == 3
    assert 'href="/app/admin/executions/exec-a"' in by_execution.text
    errors = await client.get("/app/admin/traces", params={"status": "error"})
    assert _ids(errors.text) == [failed["id"]]
    assert "Waterfall" not in errors.text
    by_connection = await client.get("/app/admin/traces", params={"connection": str(connection)})
    assert set(_ids(by_connection.text)) == {d["id"] for d in ran}
    window = {"from": ran[1]["started_at"], "to": (base + timedelta(seconds=10)).isoformat()}
    assert set(_ids((await client.get("/app/admin/traces", params=window)).text)) == {
        ran[1]["id"],
        ran[2]["id"],
    }
    # a time without a zone is the viewer's (UTC here), as the form's field sends it
    local = {"from": (base + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S")}
    assert set(_ids((await client.get("/app/admin/traces", params=local)).text)) == {
        ran[2]["id"],
        failed["id"],
    }


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"status": "6xx"}, "status"),
        ({"connection": "nope"}, "connection"),
        ({"from": "yesterday"}, "from"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
async def test_a_bad_filter_is_422_naming_it(
    client: httpx.AsyncClient, admin: TenantHandle, params: dict[str, str], named: str
) -> None:
    page = await client.get("/app/admin/traces", params=params)
    assert page.status_code == 422
    assert f"{named}:" in page.text


async def test_a_call_shows_its_exchange_with_redactions_marked_and_no_secret(
    client: httpx.AsyncClient, admin: TenantHandle, container: Container
) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    first = _call(admin.id, started_at=now, status=503, trace_id="t" * 32)
    second = _call(admin.id, started_at=now + timedelta(seconds=1), attempt=2, trace_id="t" * 32)
    await _store(container, hot=[second], durable=[first])
    page = await client.get(f"/app/admin/traces/{second['id']}")
    assert page.status_code == 200
    text = page.text
    for secret in SECRETS:
        assert secret not in text
    assert "[REDACTED]" not in text  # every redaction is shown as the marker instead
    # the Authorization header, the api_key parameter, the password and the token
    assert text.count('<mark class="redacted"') >= 4
    assert "authorization" in text
    assert "&#34;password&#34;: <mark" in text
    assert "&#34;name&#34;: &#34;Ann&#34;" in text  # JSON is shown indented, field by field
    assert "Attempts of this call" in text
    assert f'href="/app/admin/traces/{first["id"]}"' in text
    assert 'href="/app/admin/executions/exec-a"' in text
    assert (await client.get(f"/app/admin/traces/{uuid.uuid4()}")).status_code == 404


async def test_the_har_download_is_valid_har_of_the_filtered_calls(
    client: httpx.AsyncClient, admin: TenantHandle, container: Container
) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    docs = [_call(admin.id, started_at=now + timedelta(seconds=i)) for i in range(3)]
    other = _call(admin.id, started_at=now, execution_id="exec-z", status=None)
    await _store(container, hot=docs[:1], durable=[*docs[1:], other])
    response = await client.get("/app/admin/traces.har", params={"execution": "exec-a"})
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    har = orjson.loads(response.content)
    har_validator().validate(har)
    entries = har["log"]["entries"]
    assert [e["_casedesk"]["record_id"] for e in entries] == [d["id"] for d in docs]
    assert not any(secret in response.text for secret in SECRETS)
    everything = orjson.loads((await client.get("/app/admin/traces.har")).content)
    har_validator().validate(everything)
    assert len(everything["log"]["entries"]) == 4


async def test_calls_are_for_admins_of_their_tenant_only(
    client: httpx.AsyncClient, tenants: Tenants, container: Container
) -> None:
    owner, stranger = await tenants.create(), await tenants.create()
    doc = _call(owner.id, started_at=datetime.now(UTC))
    await _store(container, hot=[], durable=[doc])
    await signed_in(client, stranger, stranger.admin_id)  # an admin, of another tenant
    assert (await client.get(f"/app/admin/traces/{doc['id']}")).status_code == 404
    assert _ids((await client.get("/app/admin/traces")).text) == []
    har = orjson.loads((await client.get("/app/admin/traces.har")).content)
    assert har["log"]["entries"] == []
    for role in (Role.VIEWER, Role.AGENT):
        member = await tenants.member(owner.id, role)
        client.cookies.clear()
        await signed_in(client, owner, member.id)
        for path in (
            "/app/admin/traces",
            f"/app/admin/traces/{doc['id']}",
            "/app/admin/traces.har",
            "/app/admin/traces/live",
        ):
            assert (await client.get(path)).status_code == 403, (role, path)


async def test_live_sends_each_new_matching_call_as_a_row(
    app: Any, client: httpx.AsyncClient, admin: TenantHandle, container: Container
) -> None:
    """The Live switch's stream, spoken to as a browser would (the test client would wait for
    the end of a response that never ends): new calls of the filter arrive as rows."""
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        await messages.put(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/app/admin/traces/live",
        "raw_path": b"/app/admin/traces/live",
        "query_string": b"status=5xx",
        "root_path": "",
        "headers": [(b"host", b"casedesk.test"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 4000),
        "server": ("casedesk.test", 80),
    }
    running = asyncio.create_task(app(scope, receive, send))
    try:
        start = await asyncio.wait_for(messages.get(), 10)
        assert start["status"] == 200
        received, put, skipped = "", [], []
        for _ in range(50):  # until the tail, which starts with the next call put, has one
            now = datetime.now(UTC)
            fine, failing = (
                _call(admin.id, started_at=now),
                _call(admin.id, started_at=now, status=502),
            )
            skipped.append(fine["id"])
            put.append(failing["id"])
            await container.hot.put_many([fine, failing])
            try:
                while "event: trace" not in received:
                    chunk = await asyncio.wait_for(messages.get(), 0.2)
                    received += chunk.get("body", b"").decode()
            except TimeoutError:
                continue
            break
        assert "event: trace" in received
        assert any(f'href="/app/admin/traces/{id}"' in received for id in put)
        assert not any(id in received for id in skipped)
        assert "502" in received
    finally:
        gone.set()
        await asyncio.wait_for(running, 20)


@pytest.fixture
async def mail_server() -> AsyncIterator[LocalHTTPServer]:
    async with local_http_server() as running:
        yield running


async def test_the_case_page_links_a_channel_message_and_a_reply_to_their_calls(
    client: httpx.AsyncClient,
    desk: Desk,
    tenants: Tenants,
    container: Container,
    mail_server: LocalHTTPServer,
) -> None:
    channel = await _channel(desk, container, mail_server)
    channel.subscription_id = channel.subscription
    opened = await channel.deliver(_mail("m1"))
    commented = await channel.deliver(_mail("m2", thread_id="T-m1", text="Still smoking"))
    (opening, follow_up) = await channel.executions()
    reply = await channel.reply(opened["case_id"], "We are on it.")
    await channel.send_replies()
    # the delivery's call, as the flusher hands it to the hot tier
    await container.hot.put_many([document(r) for r in container.traces.drain(1000)])
    await signed_in(client, desk.tenant, desk.tenant.admin_id)

    page = await client.get(f"/app/cases/{opened['number']}")
    assert page.status_code == 200
    links = dict(
        re.findall(
            r'id="comment-([0-9a-f-]+)".*?class="calls-link" href="([^"]+)"', page.text, re.S
        )
    )
    assert links[commented["comment_id"]] == f"/app/admin/traces?execution={follow_up.id}"
    assert f'href="/app/admin/traces?execution={opening.id}"' in page.text  # the description
    delivery = unescape(links[reply["id"]])
    assert "connection=" in delivery
    assert "from=" in delivery
    calls = await client.get(delivery)
    assert calls.status_code == 200
    assert len(_ids(calls.text)) == 1
    assert "/send" in calls.text

    agent = await tenants.member(desk.tenant.id, Role.AGENT)
    client.cookies.clear()
    await signed_in(client, desk.tenant, agent.id)
    assert "calls-link" not in (await client.get(f"/app/cases/{opened['number']}")).text
