"""A local server that speaks Microsoft Graph's change-notification wire format, for mail.

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

Every request is recorded; ``renewals`` scripts the answers to the next PATCHes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

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


@dataclass
class Seen:
    method: str
    path: str
    query: str
    body: Any


@dataclass
class GraphSubscription:
    id: str
    resource: str
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: str


@dataclass
class GraphMail:
    caller: httpx.AsyncClient
    """How Graph reaches casedesk's hooks."""
    subscriptions: dict[str, GraphSubscription] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    renewals: list[int] = field(default_factory=list)
    """Statuses to answer the next PATCHes with, in order (then: renew normally)."""
    validation_answers: list[httpx.Response] = field(default_factory=list)
    while_creating: Callable[[], Awaitable[None]] | None = None
    """Run after a subscription is made and before Graph answers (something racing it)."""
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    def requests(self, method: str, prefix: str = "") -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(prefix)]

    def add_message(self, subject: str) -> dict[str, Any]:
        message = {
            "@odata.etag": f'W/"CQAAABYAAAD{uuid.uuid4().hex[:12]}"',
            "id": f"AAMkAGI2{uuid.uuid4().hex}AAA=",
            "subject": subject,
            "receivedDateTime": _iso(datetime.now(UTC)),
        }
        self.messages.append(message)
        return message

    def forget(self, subscription_id: str) -> None:
        """The subscription is gone at Graph (expired, or removed), as if never made."""
        del self.subscriptions[subscription_id]

    def only_subscription(self) -> GraphSubscription:
        (only,) = self.subscriptions.values()
        return only

    async def notify(
        self, subscription: GraphSubscription, message: dict[str, Any]
    ) -> httpx.Response:
        resource = f"Users/{USER}/Messages/{message['id']}"
        notification = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": subscription.expires,
            "changeType": "created",
            "resource": resource,
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Message",
                "@odata.id": resource,
                "@odata.etag": message["@odata.etag"],
                "id": message["id"],
            },
            "clientState": subscription.client_state,
            "tenantId": TENANT,
        }
        return await self._post(subscription.notification_url, {"value": [notification]})

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

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1.0/subscriptions", self._create, methods=["POST"]),
                Route("/v1.0/subscriptions/{id}", self._renew, methods=["PATCH"]),
                Route("/v1.0/subscriptions/{id}", self._delete, methods=["DELETE"]),
                Route("/v1.0/me/mailFolders/inbox/messages/delta", self._delta, methods=["GET"]),
            ]
        )

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        body = orjson.loads(raw) if raw else None
        self.seen.append(Seen(request.method, request.url.path, request.url.query, body))
        return body

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
            expires=_capped(body["expirationDateTime"]),
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
        found.expires = _capped(body["expirationDateTime"])
        return _json(200, self._resource(found, "created"))

    async def _delete(self, request: Request) -> Response:
        await self._record(request)
        if self.subscriptions.pop(request.path_params["id"], None) is None:
            return _error(404, "ResourceNotFound", "The object was not found.")
        return Response(status_code=204)

    async def _delta(self, request: Request) -> Response:
        await self._record(request)
        params = request.query_params
        if "$skiptoken" in params:
            since, offset, upto = (int(part) for part in params["$skiptoken"].split("."))
        else:
            since, offset, upto = int(params.get("$deltatoken", "0")), 0, len(self.messages)
        changed = self.messages[since:upto]
        page = changed[offset : offset + PAGE]
        answer: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/$metadata#Collection(message)",
            "value": page,
        }
        link = f"{self.base_url}/me/mailFolders/inbox/messages/delta"
        if offset + PAGE < len(changed):
            answer["@odata.nextLink"] = f"{link}?$skiptoken={since}.{offset + PAGE}.{upto}"
        else:
            answer["@odata.deltaLink"] = f"{link}?$deltatoken={upto}"
        return _json(200, answer)

    def _resource(self, subscription: GraphSubscription, change_type: str) -> dict[str, Any]:
        return {
            "@odata.context": f"{self.base_url}/$metadata#subscriptions/$entity",
            "id": subscription.id,
            "resource": subscription.resource,
            "applicationId": "24d3b144-21ae-4080-943f-7067b395b913",
            "changeType": change_type,
            "clientState": subscription.client_state,
            "notificationUrl": subscription.notification_url,
            "lifecycleNotificationUrl": subscription.lifecycle_url,
            "expirationDateTime": subscription.expires,
            "creatorId": USER,
            "latestSupportedTlsVersion": "v1_2",
        }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def _capped(asked: str) -> str:
    """Graph keeps a mail subscription at most 10,080 minutes and says for how long, with
    seven digits of fractions."""
    moment = datetime.fromisoformat(asked)
    return _iso(min(moment, datetime.now(UTC) + timedelta(minutes=10_080)))


def _json(status: int, document: dict[str, Any]) -> Response:
    return Response(orjson.dumps(document), status, media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    document = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"request-id": str(uuid.uuid4()), "date": _iso(datetime.now(UTC))},
        }
    }
    return _json(status, document)


@contextlib.asynccontextmanager
async def graph_server(caller: httpx.AsyncClient) -> AsyncIterator[GraphMail]:
    graph = GraphMail(caller)
    async with serving(graph.app()) as port:
        graph.port = port
        yield graph
