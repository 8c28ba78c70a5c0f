"""A local server that speaks Microsoft Graph's wire formats: change notifications, Outlook
mail and Teams channel messages.

- ``POST /v1.0/subscriptions`` validates the ``notificationUrl`` (and the
  ``lifecycleNotificationUrl``) as Graph does, with a POST of ``?validationToken=…`` that
  must be answered 200, ``text/plain``, with the token exactly, within 10 seconds; then it
  answers 201 with the subscription resource. A failed validation is Graph's 400.
- ``PATCH /v1.0/subscriptions/{id}`` with ``expirationDateTime`` renews; an unknown id is
  Graph's 404 ``ResourceNotFound``. ``DELETE`` answers 204 (404 when unknown).
- ``GET /v1.0/me/mailFolders/inbox/messages/delta`` is a delta query: the messages, two per
  page with ``@odata.nextLink``, then ``@odata.deltaLink``, whose ``$deltatoken`` gives only
  what arrived after it.
- ``notify`` and ``lifecycle`` send the change and lifecycle notifications Graph sends, as it
  sends them, through ``caller`` (an HTTP client that reaches casedesk).

Outlook mail (``GraphMail``), the signed-in user's mailbox:

- ``GET /v1.0/me/messages/{id}`` answers the ``message`` resource (``$select`` honoured, with
  ``internetMessageHeaders`` only when selected, as Graph gives them); an unknown id is 404
  ``ErrorItemNotFound``.
- ``POST /v1.0/$batch``: at most 20 requests (more is 400), each answered on its own with its
  ``id``, ``status``, ``headers`` and ``body``; one may be answered 429 with ``Retry-After``
  inside a batch that is itself 200 (``throttle("batch_item", …)``).
- ``POST /v1.0/me/messages/{id}/reply`` answers 202 with no body, and the reply is in
  ``sent`` (with the ``internetMessageHeaders`` it was given, the conversation of the message
  answered, a Message-ID of Graph's own and ``In-Reply-To`` / ``References``).
- ``attach`` gives a message an attachment (``fileAttachment`` with its bytes, or an
  ``itemAttachment`` / ``referenceAttachment``); ``$expand=attachments`` (with an inner
  ``($select=…)`` honoured) lists them in the message; ``GET /v1.0/me/messages/{id}/attachments/
  {aid}`` answers one with ``contentBytes`` (base64) and ``contentId``, ``…/{aid}/$value`` a
  file's bytes;
  ``attachment_failures`` scripts the statuses of the next of these (a 503, say).
- the delta answers 410 ``SyncStateNotFound`` for a delta token once ``expire_delta`` ran.

Teams channel messages (``GraphTeams``), one team with one channel:

- ``GET /v1.0/teams/{t}/channels/{c}/messages/{id}`` and ``…/messages/{id}/replies/{rid}``
  answer the ``chatMessage`` (``body.contentType`` html, ``from.user`` or
  ``from.application``, ``replyToId`` on a reply, ``channelIdentity``);
- ``POST …/messages/{id}/replies`` posts a reply as the signed-in user (201, the message) and
  notifies it, as Graph notifies an app of its own posts;
- ``GET …/messages/delta`` pages the root messages like the mail delta;
- ``GET /v1.0/users/{id}`` answers the user (``displayName``, ``mail``);
- ``host_image`` keeps an image a person pastes (a hosted content) and gives the ``<img>``
  that points at it; ``GET …/messages/{id}/hostedContents/{hid}/$value`` (and under a reply)
  answers its bytes; ``share_file`` adds a ``reference`` attachment (a SharePoint file).

Both check ``Authorization: Bearer <token>`` when ``token`` is set (else 401
``InvalidAuthenticationToken``), answer 429 with ``Retry-After`` where ``throttle`` says,
and ``lose`` drops the next notifications instead of sending them. Every request is
recorded; ``renewals`` scripts the answers to the next PATCHes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.http_server import serving

PAGE = 2

# A connector for Outlook mail through Graph, as a tenant would write it: the hook's
# validation, the client state, notifications and the subscription's lifecycle with a delta.
LIFETIME_MINUTES = 4230
GRAPH_MAIL: dict[str, Any] = {
    "id": "graph-mail",
    "name": "Outlook mail through Microsoft Graph",
    "base_url": "{{ connection.base_url }}",
    "connection": {
        "settings": {"type": "object", "properties": {"base_url": {"type": "string"}}},
        "secrets": [{"name": "token"}],
    },
    "auth": {"type": "bearer", "secret_field": "token"},
    "triggers": {
        "new_mail": {
            "kind": "instant",
            "instant": {
                "handshakes": [
                    {"when": "query.validationToken", "answer": "{{ query.validationToken }}"}
                ],
                "verify": {"type": "client_state", "value": "clientState"},
                "events": "body.value",
                "event_id": "resourceData.id",
                "notifications": [
                    {
                        "when": "lifecycleEvent == 'reauthorizationRequired'",
                        "action": "reauthorize",
                    },
                    {"when": "lifecycleEvent == 'subscriptionRemoved'", "action": "recreate"},
                    {"when": "lifecycleEvent == 'missed'", "action": "resync"},
                ],
                "ack_status": 202,
                "lifecycle": {
                    "create": {
                        "method": "POST",
                        "path": "/subscriptions",
                        "json": {
                            "changeType": "created",
                            "notificationUrl": "{{ hook_url }}",
                            "lifecycleNotificationUrl": "{{ hook_url }}",
                            "resource": "me/mailFolders('inbox')/messages",
                            "expirationDateTime": "{{ expiration }}",
                            "clientState": "{{ secrets.client_state }}",
                        },
                    },
                    "renew": {
                        "method": "PATCH",
                        "path": "/subscriptions/{{ subscription.external_id }}",
                        "json": {"expirationDateTime": "{{ expiration }}"},
                    },
                    "delete": {
                        "method": "DELETE",
                        "path": "/subscriptions/{{ subscription.external_id }}",
                    },
                    "lifetime_seconds": LIFETIME_MINUTES * 60,
                    "notified_id": "subscriptionId",
                    "expires_at": "expirationDateTime",
                    "resync": {
                        "request": {
                            "path": "{{ cursor or '/me/mailFolders/inbox/messages/delta' }}",
                            "headers": {"Prefer": "odata.maxpagesize=2"},
                        },
                        "items": "value",
                        "item_id": "id",
                        "next_page": '"@odata.nextLink"',
                        "next_cursor": '"@odata.deltaLink"',
                    },
                },
            },
        }
    },
}
TENANT = "5b6d2d4b-1ac4-4a7f-9bd8-2b6a4b0c6e52"
USER = "a9b8c7d6-0000-4000-8000-000000000001"
"""The signed-in user: the mailbox's owner, the account that posts Teams replies."""
MAILBOX = "support@contoso.example"
APP_ID = "24d3b144-21ae-4080-943f-7067b395b913"
ACCESS_TOKEN = "graph-access-token"
BATCH_MAX = 20


@dataclass
class Seen:
    method: str
    path: str
    query: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class GraphSubscription:
    id: str
    resource: str
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: str


@dataclass
class _Graph:
    """What every Graph service here shares: subscriptions and their notifications."""

    caller: httpx.AsyncClient
    """How Graph reaches casedesk's hooks."""
    subscriptions: dict[str, GraphSubscription] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    renewals: list[int] = field(default_factory=list)
    """Statuses to answer the next PATCHes with, in order (then: renew normally)."""
    validation_answers: list[httpx.Response] = field(default_factory=list)
    while_creating: Callable[[], Awaitable[None]] | None = None
    """Run after a subscription is made and before Graph answers (something racing it)."""
    token: str | None = None
    """The bearer token the API wants; None: any request is let in."""
    throttled: dict[str, list[int]] = field(default_factory=dict)
    """Per kind of request: the Retry-After seconds of the next ones answered 429."""
    lost: int = 0
    """How many of the next change notifications are lost on the way."""
    delta_expired: bool = False
    max_minutes: int = 10_080
    """The longest a subscription of this resource may live."""
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    def requests(self, method: str, prefix: str = "") -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(prefix)]

    def forget(self, subscription_id: str) -> None:
        """The subscription is gone at Graph (expired, or removed), as if never made."""
        del self.subscriptions[subscription_id]

    def only_subscription(self) -> GraphSubscription:
        (only,) = self.subscriptions.values()
        return only

    def throttle(self, kind: str, *retry_after: int) -> None:
        """Answer the next requests of ``kind`` 429 with these Retry-After seconds."""
        self.throttled[kind] = list(retry_after)

    def lose(self, count: int = 1) -> None:
        self.lost += count

    def expire_delta(self) -> None:
        """Graph forgets the delta tokens it handed out (410 on the next delta with one)."""
        self.delta_expired = True

    async def send_notifications(
        self, subscription: GraphSubscription, notifications: list[dict[str, Any]]
    ) -> httpx.Response:
        """POST the notifications in one delivery, as Graph does."""
        return await self._post(subscription.notification_url, {"value": notifications})

    def losing(self) -> bool:
        """Whether the next notification is lost on the way (and one fewer is left to lose)."""
        if not self.lost:
            return False
        self.lost -= 1
        return True

    def notification(
        self, subscription: GraphSubscription, resource: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": subscription.expires,
            "changeType": "created",
            "resource": resource,
            "resourceData": data,
            "clientState": subscription.client_state,
            "tenantId": TENANT,
        }

    async def lifecycle(self, subscription: GraphSubscription, event: str) -> httpx.Response:
        notification = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": subscription.expires,
            "tenantId": TENANT,
            "clientState": subscription.client_state,
            "lifecycleEvent": event,
        }
        url = subscription.lifecycle_url or subscription.notification_url
        return await self._post(url, {"value": [notification]})

    async def _post(self, url: str, document: dict[str, Any]) -> httpx.Response:
        return await self.caller.post(
            url,
            content=orjson.dumps(document),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )

    # --- the API ----------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/v1.0/subscriptions", self._create, methods=["POST"]),
            Route("/v1.0/subscriptions/{id}", self._renew, methods=["PATCH"]),
            Route("/v1.0/subscriptions/{id}", self._delete, methods=["DELETE"]),
        ]

    def app(self) -> Starlette:
        return Starlette(routes=self.routes())

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        body = orjson.loads(raw) if raw else None
        headers = {key.lower(): value for key, value in request.headers.items()}
        self.seen.append(Seen(request.method, request.url.path, request.url.query, body, headers))
        return body

    def _refused(self, request: Request, kind: str) -> Response | None:
        """401 without the token, 429 when ``kind`` is throttled, else None."""
        if (
            self.token is not None
            and request.headers.get("authorization") != f"Bearer {self.token}"
        ):
            return _error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        waits = self.throttled.get(kind)
        if waits:
            return _throttled(waits.pop(0))
        return None

    async def _validate(self, url: str) -> bool:
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        separator = "&" if "?" in url else "?"
        try:
            async with asyncio.timeout(10):
                answer = await self.caller.post(
                    f"{url}{separator}validationToken={quote_plus(token)}",
                    headers={"Content-Type": "text/plain; charset=utf-8"},
                )
        except (TimeoutError, httpx.HTTPError):
            return False
        self.validation_answers.append(answer)
        return (
            answer.status_code == 200
            and answer.headers.get("content-type", "").startswith("text/plain")
            and answer.text == token
        )

    async def _create(self, request: Request) -> Response:
        body = await self._record(request)
        refused = self._refused(request, "subscriptions")
        if refused is not None:
            return refused
        urls = [body["notificationUrl"], body.get("lifecycleNotificationUrl")]
        for url in filter(None, urls):
            if not await self._validate(url):
                return _error(
                    400,
                    "InvalidRequest",
                    "Subscription validation request failed. Notification endpoint must "
                    "respond with 200 OK to validation request.",
                )
        created = GraphSubscription(
            id=str(uuid.uuid4()),
            resource=body["resource"],
            notification_url=body["notificationUrl"],
            lifecycle_url=body.get("lifecycleNotificationUrl"),
            client_state=body.get("clientState"),
            expires=_capped(body["expirationDateTime"], self.max_minutes),
        )
        self.subscriptions[created.id] = created
        if self.while_creating is not None:
            await self.while_creating()
        return _json(201, self._resource(created, body.get("changeType", "created")))

    async def _renew(self, request: Request) -> Response:
        body = await self._record(request)
        if self.renewals:
            status = self.renewals.pop(0)
            return _error(status, "ServiceUnavailable" if status >= 500 else "Error", "scripted")
        found = self.subscriptions.get(request.path_params["id"])
        if found is None:
            return _error(404, "ResourceNotFound", "The object was not found.")
        found.expires = _capped(body["expirationDateTime"], self.max_minutes)
        return _json(200, self._resource(found, "created"))

    async def _delete(self, request: Request) -> Response:
        await self._record(request)
        if self.subscriptions.pop(request.path_params["id"], None) is None:
            return _error(404, "ResourceNotFound", "The object was not found.")
        return Response(status_code=204)

    def _delta_page(
        self, request: Request, items: list[dict[str, Any]], link: str, page: int
    ) -> Response:
        """A delta query over ``items`` (in the order they arrived): ``page`` per answer with
        ``@odata.nextLink``, then ``@odata.deltaLink``, whose ``$deltatoken`` gives only what
        arrived after it."""
        params = request.query_params
        if "$deltatoken" in params and self.delta_expired:
            return _error(
                410,
                "SyncStateNotFound",
                "The sync state generation is not found. resyncRequired: start a new delta.",
            )
        if "$skiptoken" in params:
            since, offset, upto = (int(part) for part in params["$skiptoken"].split("."))
        else:
            since, offset, upto = int(params.get("$deltatoken", "0")), 0, len(items)
        changed = items[since:upto]
        answer: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/$metadata#Collection(message)",
            "value": changed[offset : offset + page],
        }
        if offset + page < len(changed):
            answer["@odata.nextLink"] = f"{link}?$skiptoken={since}.{offset + page}.{upto}"
        else:
            answer["@odata.deltaLink"] = f"{link}?$deltatoken={upto}"
        return _json(200, answer)

    def _resource(self, subscription: GraphSubscription, change_type: str) -> dict[str, Any]:
        return {
            "@odata.context": f"{self.base_url}/$metadata#subscriptions/$entity",
            "id": subscription.id,
            "resource": subscription.resource,
            "applicationId": APP_ID,
            "changeType": change_type,
            "clientState": subscription.client_state,
            "notificationUrl": subscription.notification_url,
            "lifecycleNotificationUrl": subscription.lifecycle_url,
            "expirationDateTime": subscription.expires,
            "creatorId": USER,
            "latestSupportedTlsVersion": "v1_2",
        }


# --- Outlook mail -----------------------------------------------------------------------


@dataclass
class GraphMail(_Graph):
    messages: list[dict[str, Any]] = field(default_factory=list)
    """The inbox, in the order mail arrived."""
    sent: list[dict[str, Any]] = field(default_factory=list)
    """What the mailbox sent (replies), in order."""
    attachments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Each message's attachments, by message id, as Graph's attachment resources."""
    attachment_failures: list[int] = field(default_factory=list)
    """The statuses the next attachment reads answer, before they succeed again."""

    def attach(
        self,
        message: dict[str, Any],
        name: str,
        content: bytes = b"",
        content_type: str = "application/octet-stream",
        *,
        inline: bool = False,
        content_id: str | None = None,
        kind: str = "fileAttachment",
    ) -> dict[str, Any]:
        """An attachment of ``message``: a file with its bytes, or an ``itemAttachment`` (an
        attached mail) or ``referenceAttachment`` (a OneDrive link) of that ``kind``."""
        attachment: dict[str, Any] = {
            "@odata.type": f"#microsoft.graph.{kind}",
            "id": f"AAMkAGI2{uuid.uuid4().hex}BEgAQA=",
            "lastModifiedDateTime": _iso(datetime.now(UTC)),
            "name": name,
            "contentType": content_type,
            "size": len(content) + 180,  # Graph's size counts more than the bytes
            "isInline": inline,
        }
        if kind == "fileAttachment":
            attachment |= {
                "contentId": content_id,
                "contentLocation": None,
                "contentBytes": base64.b64encode(content).decode(),
            }
        self.attachments.setdefault(message["id"], []).append(attachment)
        message["hasAttachments"] = any(not a["isInline"] for a in self.attachments[message["id"]])
        return attachment

    def find(self, message_id: str) -> dict[str, Any] | None:
        return next((m for m in self.messages + self.sent if m["id"] == message_id), None)

    def add_message(
        self,
        subject: str,
        *,
        sender: tuple[str, str] = ("Ann Smith", "ann@example.com"),
        html: str | None = None,
        text: str = "",
        headers: list[tuple[str, str]] | None = None,
        conversation_id: str | None = None,
    ) -> dict[str, Any]:
        """Mail arrives in the inbox (not notified: ``notify`` tells casedesk)."""
        now = _iso(datetime.now(UTC))
        internet_id = f"<{uuid.uuid4().hex}@mail.example.com>"
        all_headers = [
            ("Received", "from mail.example.com by contoso.example; " + now),
            ("Message-ID", internet_id),
            ("Subject", subject),
            ("From", f"{sender[0]} <{sender[1]}>"),
            ("To", MAILBOX),
            *(headers or []),
        ]
        body = (
            {"contentType": "html", "content": html}
            if html is not None
            else {"contentType": "text", "content": text}
        )
        message = {
            "@odata.etag": f'W/"CQAAABYAAAD{uuid.uuid4().hex[:12]}"',
            "id": f"AAMkAGI2{uuid.uuid4().hex}AAA=",
            "createdDateTime": now,
            "receivedDateTime": now,
            "sentDateTime": now,
            "subject": subject,
            "bodyPreview": (text or html or "")[:255],
            "isDraft": False,
            "conversationId": conversation_id or f"AAQkAGI2{uuid.uuid4().hex}=",
            "internetMessageId": internet_id,
            "internetMessageHeaders": [{"name": k, "value": v} for k, v in all_headers],
            "body": body,
            "from": {"emailAddress": {"name": sender[0], "address": sender[1]}},
            "sender": {"emailAddress": {"name": sender[0], "address": sender[1]}},
            "toRecipients": [{"emailAddress": {"name": "Support", "address": MAILBOX}}],
            "ccRecipients": [],
        }
        self.messages.append(message)
        return message

    def answer_to(
        self, answered: dict[str, Any], subject: str, text: str, *, keep_headers: bool = True
    ) -> dict[str, Any]:
        """The customer answers ``answered`` (a reply the mailbox sent, or their own mail)
        from their mail program: same conversation, In-Reply-To and References to it; with
        ``keep_headers`` False a program that loses both and starts a new conversation."""
        sender = answered["toRecipients"][0]["emailAddress"] if answered in self.sent else None
        who = (sender["name"], sender["address"]) if sender else ("Ann Smith", "ann@example.com")
        headers = []
        if keep_headers:
            headers = [
                ("In-Reply-To", answered["internetMessageId"]),
                ("References", answered["internetMessageId"]),
            ]
        return self.add_message(
            subject,
            sender=who,
            text=text,
            headers=headers,
            conversation_id=answered["conversationId"] if keep_headers else None,
        )

    async def notify(
        self, subscription: GraphSubscription, *messages: dict[str, Any]
    ) -> httpx.Response:
        """Graph tells the subscription about new messages, all in one delivery."""
        notifications = []
        for message in messages:
            resource = f"Users/{USER}/Messages/{message['id']}"
            data = {
                "@odata.type": "#Microsoft.Graph.Message",
                "@odata.id": resource,
                "@odata.etag": message["@odata.etag"],
                "id": message["id"],
            }
            notifications.append(self.notification(subscription, resource, data))
        return await self.send_notifications(subscription, notifications)

    async def receive(self, subject: str, **fields: Any) -> dict[str, Any]:
        """Mail arrives and Graph notifies the subscription."""
        message = self.add_message(subject, **fields)
        if not self.losing():
            await self.notify(self.only_subscription(), message)
        return message

    def routes(self) -> list[Route]:
        return [
            *super().routes(),
            Route("/v1.0/me/mailFolders/inbox/messages/delta", self._delta, methods=["GET"]),
            Route("/v1.0/me/messages/{id}", self._message, methods=["GET"]),
            Route("/v1.0/me/messages/{id}/reply", self._reply, methods=["POST"]),
            Route("/v1.0/$batch", self._batch, methods=["POST"]),
            Route("/v1.0/me/messages/{id}/attachments/{aid}", self._attachment, methods=["GET"]),
            Route(
                "/v1.0/me/messages/{id}/attachments/{aid}/$value",
                self._attachment_value,
                methods=["GET"],
            ),
        ]

    async def _attachment_value(self, request: Request) -> Response:
        """A file attachment's raw bytes, as ``$value`` gives them."""
        answer = await self._attachment(request)
        if answer.status_code != 200:
            return answer
        found = orjson.loads(bytes(answer.body))
        content = base64.b64decode(found["contentBytes"])
        return Response(content, 200, media_type=found["contentType"])

    async def _attachment(self, request: Request) -> Response:
        await self._record(request)
        refused = self._refused(request, "attachment")
        if refused is not None:
            return refused
        if self.attachment_failures:
            status = self.attachment_failures.pop(0)
            return _error(status, "ServiceNotAvailable", "The service is unavailable.")
        params = request.path_params
        found = [a for a in self.attachments.get(params["id"], []) if a["id"] == params["aid"]]
        if not found:
            return _error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        context = f"{self.base_url}/$metadata#users('{USER}')/messages('{params['id']}')"
        return _json(200, {"@odata.context": context + "/attachments/$entity"} | found[0])

    async def _delta(self, request: Request) -> Response:
        await self._record(request)
        refused = self._refused(request, "delta")
        if refused is not None:
            return refused
        link = f"{self.base_url}/me/mailFolders/inbox/messages/delta"
        return self._delta_page(request, self.messages, link, PAGE)

    def _selected(self, message_id: str, query: str) -> tuple[int, dict[str, Any]]:
        message = self.find(message_id)
        if message is None:
            return 404, _error_body(
                "ErrorItemNotFound", "The specified object was not found in the store."
            )
        fields = dict(parse_qsl(query)).get("$select")
        if fields is None:
            shown = {k: v for k, v in message.items() if k != "internetMessageHeaders"}
        else:
            wanted = {"id", "@odata.etag", *fields.split(",")}
            shown = {k: v for k, v in message.items() if k in wanted}
        if fields and "uniqueBody" in fields:
            shown["uniqueBody"] = message["body"]
        expand = dict(parse_qsl(query)).get("$expand") or ""
        if expand.startswith("attachments"):
            inner = re.search(r"\(\$select=([^)]*)\)", expand)
            listed = self.attachments.get(message_id, [])
            if inner is not None:
                keep = {"@odata.type", "id", *inner.group(1).split(",")}
                listed = [{k: v for k, v in a.items() if k in keep} for a in listed]
            shown["attachments"] = listed
        context = f"{self.base_url}/$metadata#users('{USER}')/messages/$entity"
        return 200, {"@odata.context": context} | shown

    async def _message(self, request: Request) -> Response:
        await self._record(request)
        refused = self._refused(request, "message")
        if refused is not None:
            return refused
        status, document = self._selected(request.path_params["id"], request.url.query)
        return _json(status, document)

    async def _batch(self, request: Request) -> Response:
        body = await self._record(request)
        refused = self._refused(request, "batch")
        if refused is not None:
            return refused
        asked = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(asked, list) or not asked:
            return _error(400, "BadRequest", "Invalid batch payload format.")
        if len(asked) > BATCH_MAX:
            return _error(
                400, "BadRequest", "Number of batch request steps exceeds the maximum of 20."
            )
        if len({each.get("id") for each in asked}) != len(asked):
            return _error(400, "BadRequest", "Batch request ids must be unique.")
        responses = []
        for each in asked:
            url = urlsplit(str(each.get("url", "")))
            parts = url.path.strip("/").split("/")
            waits = self.throttled.get("batch_item")
            if waits:
                wait = waits.pop(0)
                responses.append(
                    {
                        "id": each["id"],
                        "status": 429,
                        "headers": {"Retry-After": str(wait), "Content-Type": "application/json"},
                        "body": _error_body("TooManyRequests", "Too many requests."),
                    }
                )
                continue
            if each.get("method") != "GET" or len(parts) != 3 or parts[:2] != ["me", "messages"]:
                status, document = 400, _error_body("BadRequest", "Unsupported request.")
            else:
                status, document = self._selected(parts[2], url.query)
            responses.append(
                {
                    "id": each["id"],
                    "status": status,
                    "headers": {"Content-Type": "application/json"},
                    "body": document,
                }
            )
        return _json(200, {"responses": responses})

    async def _reply(self, request: Request) -> Response:
        body = await self._record(request)
        refused = self._refused(request, "reply")
        if refused is not None:
            return refused
        answered = self.find(request.path_params["id"])
        if answered is None:
            return _error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        given = body.get("message") or {}
        if body.get("comment") is not None and given.get("body") is not None:
            return _error(400, "ErrorInvalidRequest", "Both comment and body are given.")
        for header in given.get("internetMessageHeaders") or []:
            if not str(header.get("name", "")).lower().startswith("x-"):
                return _error(
                    400, "InvalidInternetMessageHeader", "Only custom x- headers are allowed."
                )
        for attachment in given.get("attachments") or []:
            if attachment.get("@odata.type") != "#microsoft.graph.fileAttachment":
                return _error(400, "ErrorInvalidRequest", "Only fileAttachment is supported.")
            try:
                base64.b64decode(str(attachment.get("contentBytes") or ""), validate=True)
            except ValueError:
                return _error(400, "ErrorInvalidRequest", "contentBytes is not base64.")
        internet_id = f"<{uuid.uuid4().hex}@contoso.example>"
        references = " ".join(filter(None, [answered.get("internetMessageId")]))
        headers = [
            {"name": "Message-ID", "value": internet_id},
            {"name": "In-Reply-To", "value": answered["internetMessageId"]},
            {"name": "References", "value": references},
            *(given.get("internetMessageHeaders") or []),
        ]
        to = given.get("toRecipients") or [answered["from"]]
        now = _iso(datetime.now(UTC))
        self.sent.append(
            {
                "@odata.etag": f'W/"CQAAABYAAAD{uuid.uuid4().hex[:12]}"',
                "id": f"AAMkAGI2{uuid.uuid4().hex}AAB=",
                "createdDateTime": now,
                "receivedDateTime": now,
                "sentDateTime": now,
                "subject": "RE: " + str(answered.get("subject") or ""),
                "isDraft": False,
                "conversationId": answered["conversationId"],
                "internetMessageId": internet_id,
                "internetMessageHeaders": headers,
                "body": given.get("body")
                or {"contentType": "text", "content": body.get("comment", "")},
                "from": {"emailAddress": {"name": "Support", "address": MAILBOX}},
                "sender": {"emailAddress": {"name": "Support", "address": MAILBOX}},
                "toRecipients": to,
                "ccRecipients": [],
                "replyTo": answered["id"],
                "hasAttachments": bool(given.get("attachments")),
                "attachments": list(given.get("attachments") or []),
            }
        )
        return Response(status_code=202)


# --- Teams ------------------------------------------------------------------------------

TEAM = "fbe2bf47-16c8-47cf-b4a5-4b9b187c508b"
CHANNEL = "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2"
OTHER_APP = "0f5c8d3e-5e2e-4d3b-9c1e-000000000bad"
TEAMS_PAGE = 2


@dataclass
class GraphTeams(_Graph):
    max_minutes: int = 60
    """Graph keeps a subscription to channel messages at most an hour."""
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    roots: list[dict[str, Any]] = field(default_factory=list)
    """The channel's root messages, in the order they were posted."""
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    echoes: list[dict[str, Any]] = field(default_factory=list)
    """The replies casedesk posted, waiting for ``deliver_echoes``."""
    hosted: dict[str, bytes] = field(default_factory=dict)
    """Pasted images (hosted contents), by their id."""
    _clock: int = 1_700_000_000_000

    def host_image(self, content: bytes, root: str | None = None) -> tuple[str, str]:
        """An image a person pastes into a message (a root's reply when ``root``): its
        hosted content id and the ``<img>`` the message's HTML holds. The URL names the
        message to come; the server serves the image under any message of the channel."""
        hosted_id = "aWQ9eF8wLXd1cy1kMi0" + uuid.uuid4().hex
        self.hosted[hosted_id] = content
        where = f"{self.base_url}/teams/{TEAM}/channels/{CHANNEL}/messages/{root or 'new'}"
        url = f"{where}/hostedContents/{hosted_id}/$value"
        return hosted_id, f'<img src="{url}" width="120" height="80" alt="image">'

    def share_file(self, message: dict[str, Any], name: str) -> dict[str, Any]:
        """A SharePoint file shared in ``message``: a ``reference`` attachment."""
        attachment = {
            "id": uuid.uuid4().hex,
            "contentType": "reference",
            "contentUrl": f"https://contoso.sharepoint.com/sites/support/Shared%20Documents/{name}",
            "content": None,
            "name": name,
            "thumbnailUrl": None,
        }
        message["attachments"].append(attachment)
        return attachment

    @property
    def channel_path(self) -> str:
        return f"/v1.0/teams/{TEAM}/channels/{CHANNEL}"

    def add_user(self, name: str, mail: str | None) -> str:
        user_id = str(uuid.uuid4())
        self.users[user_id] = {
            "id": user_id,
            "displayName": name,
            "mail": mail,
            "userPrincipalName": mail or f"{user_id}@contoso.onmicrosoft.com",
        }
        return user_id

    def find(self, message_id: str) -> dict[str, Any] | None:
        everything = self.roots + [r for replies in self.replies.values() for r in replies]
        return next((m for m in everything if m["id"] == message_id), None)

    def _message(
        self,
        author: dict[str, Any],
        html: str,
        *,
        reply_to: str | None,
        subject: str | None,
        message_type: str = "message",
    ) -> dict[str, Any]:
        self._clock += 1013
        message_id = str(self._clock)
        now = _iso(datetime.now(UTC))
        message: dict[str, Any] = {
            "id": message_id,
            "replyToId": reply_to,
            "etag": message_id,
            "messageType": message_type,
            "createdDateTime": now,
            "lastModifiedDateTime": now,
            "lastEditedDateTime": None,
            "deletedDateTime": None,
            "subject": subject,
            "summary": None,
            "chatId": None,
            "importance": "normal",
            "locale": "en-us",
            "webUrl": f"https://teams.microsoft.com/l/message/{CHANNEL}/{message_id}",
            "policyViolation": None,
            "eventDetail": None,
            "from": author,
            "body": {"contentType": "html", "content": html},
            "channelIdentity": {"teamId": TEAM, "channelId": CHANNEL},
            "attachments": [],
            "mentions": [],
            "reactions": [],
        }
        if reply_to is None:
            self.roots.append(message)
            self.replies[message_id] = []
        else:
            self.replies[reply_to].append(message)
        return message

    def _person(self, user_id: str) -> dict[str, Any]:
        user = self.users.get(user_id, {"displayName": None})
        return {
            "application": None,
            "device": None,
            "user": {
                "@odata.type": "#microsoft.graph.teamworkUserIdentity",
                "id": user_id,
                "displayName": user["displayName"],
                "userIdentityType": "aadUser",
                "tenantId": TENANT,
            },
        }

    def resource_of(self, message: dict[str, Any]) -> str:
        root = message["replyToId"]
        where = f"teams('{TEAM}')/channels('{CHANNEL}')"
        if root is None:
            return f"{where}/messages('{message['id']}')"
        return f"{where}/messages('{root}')/replies('{message['id']}')"

    async def notify(self, *messages: dict[str, Any]) -> httpx.Response:
        subscription = self.only_subscription()
        notifications = []
        for message in messages:
            resource = self.resource_of(message)
            data = {
                "@odata.type": "#Microsoft.Graph.chatMessage",
                "@odata.id": resource,
                "id": message["id"],
            }
            notifications.append(self.notification(subscription, resource, data))
        return await self.send_notifications(subscription, notifications)

    async def post(
        self, user_id: str, html: str, *, subject: str | None = None, notify: bool = True
    ) -> dict[str, Any]:
        """A person starts a conversation in the channel."""
        message = self._message(self._person(user_id), html, reply_to=None, subject=subject)
        if notify and not self.losing():
            await self.notify(message)
        return message

    async def reply(self, root: dict[str, Any], user_id: str, html: str) -> dict[str, Any]:
        message = self._message(self._person(user_id), html, reply_to=root["id"], subject=None)
        await self.notify(message)
        return message

    async def app_post(self, app_id: str, html: str) -> dict[str, Any]:
        author = {
            "user": None,
            "device": None,
            "application": {
                "@odata.type": "#microsoft.graph.teamworkApplicationIdentity",
                "id": app_id,
                "displayName": "Build bot",
                "applicationIdentityType": "bot",
            },
        }
        message = self._message(author, html, reply_to=None, subject=None)
        await self.notify(message)
        return message

    async def system_event(self) -> dict[str, Any]:
        message = self._message(
            {"user": None, "device": None, "application": None},
            "<systemEventMessage/>",
            reply_to=None,
            subject=None,
            message_type="systemEventMessage",
        )
        await self.notify(message)
        return message

    async def deliver_echoes(self) -> list[httpx.Response]:
        sent = [await self.notify(echo) for echo in self.echoes]
        self.echoes.clear()
        return sent

    def routes(self) -> list[Route]:
        channel = "/v1.0/teams/{team}/channels/{channel}"
        return [
            *super().routes(),
            Route(f"{channel}/messages/delta", self._delta, methods=["GET"]),
            Route(f"{channel}/messages/{{id}}", self._get, methods=["GET"]),
            Route(f"{channel}/messages/{{id}}/replies/{{reply}}", self._get, methods=["GET"]),
            Route(f"{channel}/messages/{{id}}/replies", self._post_reply, methods=["POST"]),
            Route("/v1.0/users/{id}", self._user, methods=["GET"]),
            Route(f"{channel}/messages/{{id}}/hostedContents/{{hid}}/$value", self._hosted),
            Route(
                f"{channel}/messages/{{id}}/replies/{{reply}}/hostedContents/{{hid}}/$value",
                self._hosted,
            ),
        ]

    async def _hosted(self, request: Request) -> Response:
        await self._record(request)
        refused = self._refused(request, "hosted") or self._where(request)
        if refused is not None:
            return refused
        content = self.hosted.get(request.path_params["hid"])
        if content is None:
            return _error(404, "NotFound", "Hosted content not found.")
        return Response(content, 200, media_type="image/png")

    def _where(self, request: Request) -> Response | None:
        params = request.path_params
        if params.get("team") != TEAM or params.get("channel") != CHANNEL:
            return _error(404, "NotFound", "No team or channel found with the given ids.")
        return None

    async def _delta(self, request: Request) -> Response:
        await self._record(request)
        refused = self._refused(request, "delta") or self._where(request)
        if refused is not None:
            return refused
        link = f"{self.base_url}/teams/{TEAM}/channels/{CHANNEL}/messages/delta"
        return self._delta_page(request, self.roots, link, TEAMS_PAGE)

    async def _get(self, request: Request) -> Response:
        await self._record(request)
        refused = self._refused(request, "message") or self._where(request)
        if refused is not None:
            return refused
        params = request.path_params
        found = self.find(params.get("reply") or params["id"])
        if found is None or (params.get("reply") and found["replyToId"] != params["id"]):
            return _error(404, "NotFound", "Message not found.")
        context = (
            f"{self.base_url}/$metadata#teams('{TEAM}')/channels('{CHANNEL}')/messages/$entity"
        )
        return _json(200, {"@odata.context": context} | found)

    async def _post_reply(self, request: Request) -> Response:
        body = await self._record(request)
        refused = self._refused(request, "reply") or self._where(request)
        if refused is not None:
            return refused
        root = self.find(request.path_params["id"])
        if root is None or root["replyToId"] is not None:
            return _error(404, "NotFound", "Message not found.")
        content = (body or {}).get("body") or {}
        if not content.get("content"):
            return _error(400, "BadRequest", "Message body cannot be empty.")
        message = self._message(
            self._person(USER), str(content["content"]), reply_to=root["id"], subject=None
        )
        message["body"] = {
            "contentType": content.get("contentType", "text"),
            "content": content["content"],
        }
        self.echoes.append(message)
        return _json(201, message)

    async def _user(self, request: Request) -> Response:
        await self._record(request)
        refused = self._refused(request, "user")
        if refused is not None:
            return refused
        user = self.users.get(request.path_params["id"])
        if user is None:
            return _error(404, "Request_ResourceNotFound", "Resource does not exist.")
        fields = request.query_params.get("$select")
        shown = (
            user
            if fields is None
            else {k: v for k, v in user.items() if k in {"id", *fields.split(",")}}
        )
        return _json(200, {"@odata.context": f"{self.base_url}/$metadata#users/$entity"} | shown)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def _capped(asked: str, minutes: int) -> str:
    """Graph keeps a subscription at most so many minutes (10,080 for mail, 60 for channel
    messages) and says for how long, with seven digits of fractions."""
    moment = datetime.fromisoformat(asked)
    return _iso(min(moment, datetime.now(UTC) + timedelta(minutes=minutes)))


def _json(status: int, document: dict[str, Any]) -> Response:
    return Response(orjson.dumps(document), status, media_type="application/json")


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"request-id": str(uuid.uuid4()), "date": _iso(datetime.now(UTC))},
        }
    }


def _error(status: int, code: str, message: str) -> Response:
    return _json(status, _error_body(code, message))


def _throttled(retry_after: int) -> Response:
    response = _error(
        429, "TooManyRequests", "Too many requests, retry after the time Retry-After says."
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


@contextlib.asynccontextmanager
async def graph_server(
    caller: httpx.AsyncClient, *, token: str | None = None
) -> AsyncIterator[GraphMail]:
    graph = GraphMail(caller, token=token)
    async with serving(graph.app()) as port:
        graph.port = port
        yield graph


@contextlib.asynccontextmanager
async def teams_server(
    caller: httpx.AsyncClient, *, token: str | None = None
) -> AsyncIterator[GraphTeams]:
    teams = GraphTeams(caller, token=token)
    async with serving(teams.app()) as port:
        teams.port = port
        yield teams
