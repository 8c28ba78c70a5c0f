"""Webhook ingress, ``/hooks/{token}``, and an admin's view of a subscription's hook.

The ingress takes no API key: the unguessable token is the address, and the trigger's own
checks (a signature, a token, a client state) say whether to believe a delivery. The body is
read as raw bytes, whatever its media type (JSON, a Slack form, text), because a signature
is over the bytes as sent; the route's only checks before the trigger's are the server's
body limit and U+0000 in the query. Any query parameter is taken (Graph's
``validationToken``, a sender's own).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.responses import Response

from casedesk.api import API_V1
from casedesk.api.deps import ContainerDep, PrincipalDep, UnitOfWorkDep
from casedesk.api.problems import PROBLEM_JSON, problem
from casedesk.api.routing import ApiRoute
from casedesk.integrations.hooks import MAX_BODY_DEPTH, Delivery
from casedesk.integrations.manifests.common import Code
from casedesk.platform import instant
from casedesk.platform.inbox import HookMethodNotAllowed, Inbox


class HookRoute(ApiRoute):
    any_query = True


ingress = APIRouter(route_class=HookRoute, tags=["hooks"])
router = APIRouter(prefix=API_V1, route_class=ApiRoute, tags=["hooks"])

Token = Annotated[
    str, Path(max_length=256, description="the subscription's hook token (its URL is a secret)")
]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {}}}


_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "stored (the trigger's ack status, 200 unless it says otherwise), or a "
        "handshake's answer: the validation token as text/plain, a challenge as JSON",
        "content": {"text/plain": {}, "application/json": {}},
    },
    400: _problem("the body is not what it claims to be (not JSON, not UTF-8); says why"),
    401: _problem(
        "the signature, token or client state is missing or wrong, or the "
        "signature's timestamp is outside the window: nothing is stored"
    ),
    404: _problem("no hook at this address"),
    405: _problem("a GET that is no handshake: deliveries are POSTed"),
    410: _problem("the hook's workflow is disabled: deliveries are refused until it is enabled"),
    413: _problem("the body is larger than the server's or this hook's limit"),
    422: _problem("the body holds U+0000 or nests too deeply to be stored; names where"),
    503: _problem("the hook's connector, connection or secrets cannot be used now; retry"),
}
_ANY_BODY = {
    "requestBody": {
        "required": False,
        "description": "whatever the sender sends: JSON, a form (Slack), or text",
        "content": {
            "application/json": {
                "schema": {"x-max-depth": MAX_BODY_DEPTH, "x-max-bytes": 1_048_576}
            },
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
            },
        },
    }
}


async def _deliver(request: Request, container: ContainerDep, token: str) -> Response:
    delivery = Delivery(
        method=request.method,
        body=await request.body(),
        headers=dict(request.headers),
        query=dict(request.query_params),
    )
    inbox = Inbox(container.database, container.hub, container.box, container.hooks)
    try:
        answer = await inbox.receive(token, delivery)
    except HookMethodNotAllowed as exc:
        return problem(
            405, title=exc.title, detail=exc.detail, slug=exc.slug, headers={"Allow": "POST"}
        )
    return Response(
        answer.content,
        answer.status,
        media_type=answer.media_type,
        headers={"X-Content-Type-Options": "nosniff"},
    )


@ingress.post(
    "/hooks/{token}",
    summary="Deliver an event to a subscription's hook",
    response_class=Response,
    responses=_ANSWERS,
    openapi_extra=_ANY_BODY,
)
async def post_delivery(request: Request, container: ContainerDep, token: Token) -> Response:
    """Stored once per event id (a provider's retry is acknowledged and dropped), then
    acknowledged; a worker hands it to the workflow. Handshakes are answered, not stored."""
    return await _deliver(request, container, token)


@ingress.get(
    "/hooks/{token}",
    summary="Answer a sender's handshake",
    response_class=Response,
    responses=_ANSWERS,
)
async def get_handshake(request: Request, container: ContainerDep, token: Token) -> Response:
    """For senders that check the endpoint with a GET (a challenge in the query)."""
    return await _deliver(request, container, token)


class HookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    subscription_id: uuid.UUID
    url: str | None = Field(
        description="where the sender delivers: CASEDESK_PUBLIC_URL + /hooks/{token}; null "
        "until the subscription's workflow is enabled"
    )
    verification: str = Field(description="how deliveries are checked: none, hmac, bearer, …")
    secret_fields: list[str] = Field(description="the secrets this hook may keep")
    secrets_set: list[str] = Field(
        description="those set, on the connection or the subscription (values are never shown)"
    )


SecretValue = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class HookSecretsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secrets: dict[Code, SecretValue | None] = Field(
        max_length=20,
        description="secrets of the subscription's own, by name (e.g. `signing_secret`); "
        "null removes one. Sealed, never shown again",
        json_schema_extra={"additionalProperties": False},  # a name off the pattern is a 422
    )


@router.get("/subscriptions/{subscription_id}/hook", response_model=HookOut)
async def read_hook(
    subscription_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
) -> instant.HookView:
    """Admin: the hook URL to give the sender, and which secrets are set."""
    return await instant.describe_hook(
        uow,
        container.hub,
        container.box,
        principal,
        subscription_id,
        base_url=container.settings.external_url,
    )


@router.put("/subscriptions/{subscription_id}/hook/secrets", response_model=HookOut)
async def set_hook_secrets(
    subscription_id: uuid.UUID,
    body: HookSecretsIn,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
) -> instant.HookView:
    """Admin: set the hook's own secrets, such as the signing secret of a generic webhook
    without a connection."""
    return await instant.set_hook_secrets(
        uow,
        container.hub,
        container.box,
        principal,
        subscription_id,
        dict(body.secrets),
        base_url=container.settings.external_url,
    )
