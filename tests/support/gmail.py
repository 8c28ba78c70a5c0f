"""A local server that speaks the Gmail API (v1) and sends Pub/Sub push deliveries as Google
Cloud Pub/Sub does for a mailbox's ``users.watch``.

The API, under ``/gmail/v1/users/me``, with Google's JSON error shape
(``{"error": {"code", "message", "status"}}``):

- every call needs ``Authorization: Bearer <token>`` with a token the OAuth server
  (``tests/support/oauth_server.py``) issued and that was not rejected since
  (``reject_tokens``): otherwise 401 ``UNAUTHENTICATED``;
- ``rate_limit`` scripts 429 ``RESOURCE_EXHAUSTED`` answers with ``Retry-After`` per call;
- ``GET /profile``: ``emailAddress``, ``messagesTotal``, ``threadsTotal``, ``historyId``;
- ``POST /watch`` (``topicName``, ``labelIds``, ``labelFilterBehavior``): ``historyId`` and
  ``expiration`` (Unix milliseconds, as a string, 7 days on); ``POST /stop``: 204;
- ``GET /history``: the records after ``startHistoryId`` (ascending), filtered by
  ``historyTypes`` and ``labelId``, ``maxResults`` (default 100, at most 500) a page, paged by
  ``pageToken`` / ``nextPageToken``, with the mailbox's current ``historyId``; 400 without a
  start, 404 for one older than the oldest record kept (``expire_history``);
- ``GET /messages``: ``{id, threadId}`` newest first, ``maxResults`` / ``pageToken``, spam and
  trash left out unless ``includeSpamTrash``; ``resultSizeEstimate``;
- ``GET /messages/{id}``: ``format=raw`` (base64url ``raw``), ``full`` (``payload``: the MIME
  tree with each part's ``headers`` and base64url ``body.data``), ``minimal``, ``metadata``;
  404 for an unknown id;
- ``GET /messages/{id}/attachments/{attachmentId}``: a part's bytes, base64url ``data`` and
  ``size``, as ``users.messages.attachments.get``; with ``format=full`` a file part (one with
  a name, an ``attachment`` disposition, or not text) larger than ``ATTACHMENT_DATA_MAX`` has
  a ``body.attachmentId`` and no ``data``, a smaller one its ``data``; ``fail_attachments``
  scripts the statuses of the next of these calls (a 503, say);
- ``POST /messages/send`` (``raw``, ``threadId``): the message is stored with the label
  ``SENT`` in that thread (a new one without), added to the history, and answered with its
  ``id``, ``threadId`` and ``labelIds``.

The mailbox: ``deliver`` stores a message (raw bytes) in a thread with ``INBOX`` and
``UNREAD`` and adds a ``messagesAdded`` record; while the watch holds, Pub/Sub pushes a
notification to ``push_url`` through ``caller`` (unless ``lose_pushes`` swallows it): a JSON
body ``{"message": {"data", "messageId", "publishTime", …}, "subscription"}`` whose base64
``data`` is ``{"emailAddress", "historyId"}``. ``expire_watch`` ends the watch (no pushes
until it is made again).
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import httpx
import orjson
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from casedesk.bootstrap import Container, job_handlers
from casedesk.platform import instant
from casedesk.platform.instant import CREATE, PROCESS, RESYNC
from casedesk.platform.intake import RUN
from casedesk.platform.polling import POLL, poll_key
from casedesk.store.models import Execution, Subscription
from tests.support.cases import Desk
from tests.support.channels import DeskSide
from tests.support.http_server import serving
from tests.support.instant import run_jobs
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer
from tests.support.workflows import published

ADDRESS = "support@example.com"
TOPIC = "projects/casedesk-test/topics/gmail"
PUSH_SUBSCRIPTION = "projects/casedesk-test/subscriptions/gmail-push"
WATCH_DAYS = 7
PREFIX = "/gmail/v1/users/me"
ATTACHMENT_DATA_MAX = 1024
"""A file part larger than this is fetched with attachments.get; a smaller one is inline."""


@dataclass
class Call:
    name: str
    """``history``, ``messages.get``, ``messages.send``, ``watch``, …"""
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Stored:
    id: str
    thread_id: str
    labels: list[str]
    raw: bytes
    history_id: int
    internal_date: int

    def resource(self, form: str) -> dict[str, Any]:
        found: dict[str, Any] = {"id": self.id, "threadId": self.thread_id}
        if form == "minimal":
            return found | {"labelIds": list(self.labels)}
        parsed = email.message_from_bytes(self.raw, policy=email.policy.compat32)
        found |= {
            "labelIds": list(self.labels),
            "snippet": _snippet(parsed),
            "historyId": str(self.history_id),
            "internalDate": str(self.internal_date),
            "sizeEstimate": len(self.raw),
        }
        if form == "raw":
            return found | {"raw": base64.urlsafe_b64encode(self.raw).decode()}
        payload = _part(parsed, "", self.id)
        if form == "metadata":
            payload = {"mimeType": payload["mimeType"], "headers": payload["headers"]}
        return found | {"payload": payload}


@dataclass
class Pushed:
    body: dict[str, Any]
    status: int


@dataclass
class GmailMailbox:
    caller: httpx.AsyncClient
    """How Pub/Sub reaches casedesk."""
    oauth: OAuthServer
    address: str = ADDRESS
    push_url: str = ""
    """The push subscription's endpoint: the casedesk subscription's hook."""
    messages: dict[str, Stored] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    history_id: int = 1000
    """The mailbox's current historyId."""
    oldest_kept: int = 0
    """history.list answers 404 for a startHistoryId older than this."""
    watch: dict[str, Any] | None = None
    watches: list[dict[str, Any]] = field(default_factory=list)
    stops: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    """The bodies of messages.send, in order."""
    calls: list[Call] = field(default_factory=list)
    limits: dict[str, list[int]] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)
    pushes: list[Pushed] = field(default_factory=list)
    lose_pushes: int = 0
    """Notifications Pub/Sub drops from now on (never delivered)."""
    page_size: int | None = None
    """Fewer results a page than ``maxResults`` asks for (Gmail may answer fewer)."""
    port: int = 0
    attachment_failures: list[int] = field(default_factory=list)
    """The statuses the next attachments.get calls answer (a 503, say)."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(0x18C0A0000001))
    _push_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(9000001))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/gmail/v1"

    # --- controls -------------------------------------------------------------------------

    def rate_limit(self, name: str, *retry_after: int) -> None:
        """Answer the next calls of ``name`` with 429 and these Retry-After seconds."""
        self.limits[name] = list(retry_after)

    def reject_tokens(self) -> None:
        """Every access token issued so far is expired for Gmail: 401 from now on."""
        self.rejected.update(self.oauth.issued_access_tokens)

    def expire_history(self) -> None:
        """Gmail keeps no history before now: an older startHistoryId is a 404."""
        self.oldest_kept = self.history_id + 1

    def expire_watch(self) -> None:
        self.watch = None

    def calls_to(self, name: str) -> list[Call]:
        return [call for call in self.calls if call.name == name]

    def thread_of(self, message_id: str) -> str:
        return self.messages[message_id].thread_id

    async def deliver(
        self,
        raw: bytes,
        *,
        thread_of: str | None = None,
        labels: Sequence[str] = ("INBOX", "UNREAD"),
        push: bool = True,
    ) -> Stored:
        """Mail arrives: stored, in the thread of ``thread_of`` (a message id) or a new one,
        recorded in the history and, while the watch holds, pushed."""
        thread = None if thread_of is None else self.messages[thread_of].thread_id
        stored = self._store(raw, thread, list(labels))
        if push:
            await self.push()
        return stored

    async def push(self) -> Pushed | None:
        """Pub/Sub's push of the mailbox's current historyId, if the watch holds."""
        if self.watch is None or self.watch["expiration"] <= time.time() * 1000:
            return None
        if self.lose_pushes:
            self.lose_pushes -= 1
            return None
        number = str(next(self._push_ids))
        data = orjson.dumps({"emailAddress": self.address, "historyId": self.history_id})
        published = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        body = {
            "message": {
                "data": base64.b64encode(data).decode(),
                "messageId": number,
                "message_id": number,
                "publishTime": published,
                "publish_time": published,
                "attributes": {},
            },
            "subscription": PUSH_SUBSCRIPTION,
        }
        response = await self.caller.post(self.push_url, json=body)
        pushed = Pushed(body, response.status_code)
        self.pushes.append(pushed)
        return pushed

    async def repush(self, pushed: Pushed) -> Pushed:
        """Pub/Sub delivers the same message again (at least once)."""
        response = await self.caller.post(self.push_url, json=pushed.body)
        again = Pushed(pushed.body, response.status_code)
        self.pushes.append(again)
        return again

    def _store(self, raw: bytes, thread: str | None, labels: list[str]) -> Stored:
        message_id = f"{next(self._ids):016x}"
        self.history_id += 1
        stored = Stored(
            message_id,
            thread or message_id,
            labels,
            raw,
            self.history_id,
            int(time.time() * 1000),
        )
        self.messages[message_id] = stored
        shown = {"id": message_id, "threadId": stored.thread_id, "labelIds": list(labels)}
        self.history.append(
            {
                "id": str(self.history_id),
                "messages": [{"id": message_id, "threadId": stored.thread_id}],
                "messagesAdded": [{"message": shown}],
            }
        )
        return stored

    # --- the API --------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(f"{PREFIX}/profile", self._route("profile", self._profile)),
                Route(f"{PREFIX}/watch", self._route("watch", self._watch), methods=["POST"]),
                Route(f"{PREFIX}/stop", self._route("stop", self._stop), methods=["POST"]),
                Route(f"{PREFIX}/history", self._route("history", self._history)),
                Route(
                    f"{PREFIX}/messages/send",
                    self._route("messages.send", self._send),
                    methods=["POST"],
                ),
                Route(f"{PREFIX}/messages", self._route("messages.list", self._list)),
                Route(f"{PREFIX}/messages/{{id}}", self._route("messages.get", self._get)),
                Route(
                    f"{PREFIX}/messages/{{id}}/attachments/{{attachment}}",
                    self._route("attachments.get", self._attachment),
                ),
            ]
        )

    def _route(self, name: str, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            content = await request.body()
            body = orjson.loads(content) if content else None
            call = Call(
                name,
                request.method,
                request.url.path,
                dict(request.query_params),
                dict(request.headers),
                body,
            )
            self.calls.append(call)
            scheme, _, token = call.headers.get("authorization", "").partition(" ")
            if (
                scheme.lower() != "bearer"
                or token not in self.oauth.issued_access_tokens
                or token in self.rejected
            ):
                return _error(401, "UNAUTHENTICATED", "Request had invalid credentials.")
            waits = self.limits.get(name)
            if waits:
                wait = waits.pop(0)
                return _error(
                    429, "RESOURCE_EXHAUSTED", "Too many requests", {"Retry-After": str(wait)}
                )
            answer: Response = await handler(call, request.path_params)
            return answer

        return endpoint

    async def _profile(self, call: Call, _: dict[str, str]) -> Response:
        threads = {stored.thread_id for stored in self.messages.values()}
        return _json(
            {
                "emailAddress": self.address,
                "messagesTotal": len(self.messages),
                "threadsTotal": len(threads),
                "historyId": str(self.history_id),
            }
        )

    async def _watch(self, call: Call, _: dict[str, str]) -> Response:
        body = call.body or {}
        if not str(body.get("topicName", "")).startswith("projects/"):
            return _error(400, "INVALID_ARGUMENT", "Invalid topicName")
        expiration = int(time.time() * 1000) + WATCH_DAYS * 86_400_000
        self.watch = {**body, "expiration": expiration}
        self.watches.append(self.watch)
        return _json({"historyId": str(self.history_id), "expiration": str(expiration)})

    async def _stop(self, call: Call, _: dict[str, str]) -> Response:
        self.watch = None
        self.stops += 1
        return Response(status_code=204)

    async def _history(self, call: Call, _: dict[str, str]) -> Response:
        query = call.query
        start = query.get("startHistoryId")
        if not start or not start.isdigit():
            return _error(400, "INVALID_ARGUMENT", "Invalid startHistoryId")
        if int(start) < self.oldest_kept:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        types = {"messagesAdded" if t == "messageAdded" else t for t in _all(call, "historyTypes")}
        label = query.get("labelId")
        records = [r for r in self.history if int(r["id"]) > int(start)]
        if types:
            records = [r for r in records if any(t in r for t in types)]
        if label:
            records = [
                r
                for r in records
                if any(label in m["message"]["labelIds"] for m in r.get("messagesAdded", []))
            ]
        page, token = _paged(records, query, default=100, cap=self.page_size)
        answer: dict[str, Any] = {"historyId": str(self.history_id)}
        if page:
            answer["history"] = page
        if token:
            answer["nextPageToken"] = token
        return _json(answer)

    async def _list(self, call: Call, _: dict[str, str]) -> Response:
        spam_too = call.query.get("includeSpamTrash") == "true"
        listed = [
            {"id": s.id, "threadId": s.thread_id}
            for s in reversed(list(self.messages.values()))
            if spam_too or not {"SPAM", "TRASH"} & set(s.labels)
        ]
        page, token = _paged(listed, call.query, default=100, cap=self.page_size)
        answer: dict[str, Any] = {"resultSizeEstimate": len(listed)}
        if page:
            answer["messages"] = page
        if token:
            answer["nextPageToken"] = token
        return _json(answer)

    async def _get(self, call: Call, params: dict[str, str]) -> Response:
        stored = self.messages.get(params["id"])
        if stored is None:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        form = call.query.get("format", "full")
        if form not in {"raw", "full", "minimal", "metadata"}:
            return _error(400, "INVALID_ARGUMENT", f"Invalid format {form}")
        return _json(stored.resource(form))

    async def _attachment(self, call: Call, params: dict[str, str]) -> Response:
        if self.attachment_failures:
            status = self.attachment_failures.pop(0)
            return _error(status, "UNAVAILABLE", "The service is currently unavailable.")
        stored = self.messages.get(params["id"])
        owner, _, part_id = _attachment_key(params["attachment"]).partition(":")
        if stored is None or owner != stored.id:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        parsed = email.message_from_bytes(stored.raw, policy=email.policy.compat32)
        part = _find_part(parsed, part_id)
        content = None if part is None else part.get_payload(decode=True)
        if not isinstance(content, bytes):
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        data = base64.urlsafe_b64encode(content).decode()
        return _json({"size": len(content), "data": data})

    async def _send(self, call: Call, _: dict[str, str]) -> Response:
        body = call.body or {}
        raw = body.get("raw")
        if not isinstance(raw, str) or not raw:
            return _error(400, "INVALID_ARGUMENT", "'raw' RFC822 payload message string required")
        content = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        parsed = email.message_from_bytes(content, policy=email.policy.compat32)
        if not parsed["To"]:
            return _error(400, "INVALID_ARGUMENT", "Invalid To header")
        if parsed["From"] is None:
            content = f"From: {self.address}\r\n".encode() + content
        thread = body.get("threadId")
        if thread is not None and not any(s.thread_id == thread for s in self.messages.values()):
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        self.sent.append(body)
        stored = self._store(content, thread, ["SENT"])
        return _json({"id": stored.id, "threadId": stored.thread_id, "labelIds": ["SENT"]})

    # --- what the tests read --------------------------------------------------------------

    def sent_messages(self) -> list[Message]:
        """The messages casedesk sent, parsed."""
        found = []
        for body in self.sent:
            raw = str(body["raw"])
            content = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            found.append(email.message_from_bytes(content, policy=email.policy.default))
        return found


def _all(call: Call, name: str) -> list[str]:
    return [v for k, v in httpx.QueryParams(call.query).multi_items() if k == name]


def _paged(
    items: list[dict[str, Any]], query: dict[str, str], *, default: int, cap: int | None
) -> tuple[list[dict[str, Any]], str | None]:
    size = min(int(query.get("maxResults") or default), 500, cap or 500)
    at = int(query.get("pageToken") or 0)
    page = items[at : at + size]
    more = at + size < len(items)
    return page, str(at + size) if more else None


def _attachment_id(owner: str, part_id: str) -> str:
    return base64.urlsafe_b64encode(f"ANGj{owner}:{part_id}".encode()).decode().rstrip("=")


def _attachment_key(attachment_id: str) -> str:
    try:
        text = base64.urlsafe_b64decode(attachment_id + "=" * (-len(attachment_id) % 4))
    except ValueError:
        return ""
    return text.decode(errors="replace").removeprefix("ANGj")


def _find_part(message: Message, part_id: str) -> Message | None:
    found = message
    for step in [n for n in part_id.split(".") if n]:
        children = found.get_payload()
        if not isinstance(children, list) or not step.isdigit() or int(step) >= len(children):
            return None
        found = children[int(step)]
    return found


def _is_file(message: Message) -> bool:
    disposition = (message.get("Content-Disposition") or "").split(";")[0].strip().lower()
    return (
        disposition == "attachment"
        or bool(message.get_filename())
        or message.get_content_maintype() not in ("text", "multipart", "message")
    )


def _part(message: Message, part_id: str, owner: str = "") -> dict[str, Any]:
    """One MIME part as ``format=full`` shows it (``owner``: the message's id, which a
    large file part's ``attachmentId`` names)."""
    shown: dict[str, Any] = {
        "partId": part_id,
        "mimeType": message.get_content_type(),
        "filename": message.get_filename() or "",
        "headers": [{"name": k, "value": str(v)} for k, v in message.items()],
    }
    if message.is_multipart():
        children = message.get_payload()
        assert isinstance(children, list)
        shown["body"] = {"size": 0}
        shown["parts"] = [
            _part(child, f"{part_id}.{n}" if part_id else str(n), owner)
            for n, child in enumerate(children)
        ]
        return shown
    content = message.get_payload(decode=True)
    data = content if isinstance(content, bytes) else b""
    if owner and _is_file(message) and len(data) > ATTACHMENT_DATA_MAX:
        shown["body"] = {"size": len(data), "attachmentId": _attachment_id(owner, part_id)}
        return shown
    shown["body"] = {"size": len(data), "data": base64.urlsafe_b64encode(data).decode()}
    return shown


def _snippet(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            content = part.get_payload(decode=True)
            if isinstance(content, bytes):
                return content[:100].decode("utf-8", errors="replace")
    return ""


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(document), status, headers, media_type="application/json")


def _error(
    status: int, reason: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    document = {"error": {"code": status, "message": message, "status": reason}}
    return _json(document, status, headers)


@contextlib.asynccontextmanager
async def gmail_server(
    caller: httpx.AsyncClient, oauth: OAuthServer
) -> AsyncIterator[GmailMailbox]:
    mailbox = GmailMailbox(caller, oauth)
    async with serving(mailbox.app()) as port:
        mailbox.port = port
        yield mailbox


# --- a desk connected to the mailbox -------------------------------------------------------


class GmailDesk(DeskSide):
    """A tenant whose Gmail connection (authorized through the OAuth server) feeds a
    workflow with a ``receive_message`` step, through ``new_mail`` or ``new_mail_polled``."""

    def __init__(self, desk: Desk, container: Container, gmail: GmailMailbox) -> None:
        super().__init__(desk, container)
        self.gmail = gmail
        self.connection_id = ""

    async def authorize(self) -> str:
        http, headers, oauth = self.desk.http, self.desk.headers, self.gmail.oauth
        created = await http.post(
            "/api/v1/connections",
            json={
                "name": "Support mailbox",
                "connector": "gmail",
                "settings": {
                    "client_id": CLIENT_ID,
                    "email_address": self.gmail.address,
                    "from_name": "Example Support",
                    "topic_name": TOPIC,
                    "base_url": self.gmail.base_url,
                    "authorize_url": f"{oauth.url}/oauth/authorize",
                    "token_url": f"{oauth.url}/oauth/token",
                },
                "secrets": {"client_secret": CLIENT_SECRET},
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        self.connection_id = created.json()["id"]
        started = await http.post(
            f"/api/v1/connections/{self.connection_id}/authorize", headers=headers
        )
        assert started.status_code == 200, started.text
        back = await oauth.consent(started.json()["authorize_url"])
        done = await http.get("/api/v1/oauth/callback", params=back)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "active"
        return self.connection_id

    async def connect(self, trigger: str = "new_mail") -> None:
        """Authorize, publish the workflow and, for the instant trigger, make the watch (with
        its baseline: the mail already there is not imported)."""
        connection = await self.authorize()
        workflow = await published(
            self.desk,
            {
                "code": f"gmail-{trigger.replace('_', '-')}",
                "name": "Support mail",
                "trigger": {"connector": "gmail", "trigger": trigger, "connection_id": connection},
                "steps": [
                    {"name": "thread", "kind": "receive_message", "template": "question"}
                    | {"queue": "support", "priority": "normal"}
                ],
            },
        )
        self.subscription_id = workflow["subscription"]["id"]
        subscription = await self.subscription()
        if trigger == "new_mail":
            token = instant.hook_token(subscription, self.container.box)
            assert token is not None
            self.gmail.push_url = f"/hooks/{token}"
            assert await self.run(CREATE) == 1

    async def subscription(self) -> Subscription:
        async with self.container.unit_of_work(self.desk.tenant.id) as uow:
            return await uow.subscriptions.get(uuid.UUID(self.subscription_id))

    async def run(self, *kinds: str, rounds: int = 10) -> int:
        return await run_jobs(self.container, self.desk.tenant.id, *kinds, rounds=rounds)

    async def work(self) -> int:
        """What the workers would do with the pushes: the inbox, the resyncs it asks for,
        then the executions they queue."""
        return await self.run(PROCESS, RESYNC, RUN)

    async def poll(self) -> None:
        """One polling run (due or not), then the executions it queued."""
        async with self.container.unit_of_work(self.desk.tenant.id) as uow:
            job = await uow.jobs.find(poll_key(uuid.UUID(self.subscription_id)))
        assert job is not None
        await job_handlers(self.container)[POLL](job)
        await self.run(RUN)

    async def fired(self) -> list[str]:
        """The Gmail message ids the subscription fired, in order."""
        async with self.container.unit_of_work(self.desk.tenant.id) as uow:
            found = await uow.session.scalars(
                select(Execution.source_id)
                .where(Execution.subscription_id == uuid.UUID(self.subscription_id))
                .order_by(Execution.created_at, Execution.id)
            )
            return [str(source_id) for source_id in found.all()]


def mail(
    subject: str | bytes,
    body: str | bytes = "Hello",
    *,
    sender: str = "Ann Smith <ann@example.com>",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    charset: str = "utf-8",
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """An RFC 5322 message as a customer's mailer writes it (``subject`` as bytes: written
    into the header as it is, encoded words and all)."""
    lines = [
        b"From: " + sender.encode(),
        b"To: " + ADDRESS.encode(),
        b"Subject: " + (subject if isinstance(subject, bytes) else subject.encode()),
        b"Date: Tue, 01 Dec 2026 10:00:00 +0000",
        b"Message-ID: <" + (message_id or f"{uuid.uuid4().hex}@mail.example").encode() + b">",
    ]
    if in_reply_to:
        lines.append(b"In-Reply-To: <" + in_reply_to.encode() + b">")
    if references:
        lines.append(b"References: " + " ".join(f"<{r}>" for r in references).encode())
    lines += [f"{name}: {value}".encode() for name, value in headers]
    lines += [
        b"MIME-Version: 1.0",
        f"Content-Type: text/plain; charset={charset}".encode(),
        b"Content-Transfer-Encoding: 8bit",
    ]
    content = body if isinstance(body, bytes) else body.encode(charset)
    return b"\r\n".join(lines) + b"\r\n\r\n" + content + b"\r\n"
