from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from casedesk.activities import webhooks
from casedesk.api import API_V1
from casedesk.api.deps import ContainerDep, CursorParam, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.identity.roles import Role
from casedesk.domain.webhooks.subscriptions import WebhookSpec

router = APIRouter(prefix=API_V1, tags=["webhooks"], route_class=ApiRoute)
Status = Literal["pending", "succeeded", "failed"]


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    url: str
    events: list[str]
    enabled: bool
    description: str | None
    failing_since: datetime | None = Field(
        description="when the current run of failed attempts began; null after a success"
    )
    disabled_at: datetime | None
    disabled_reason: str | None = Field(
        description="why it is disabled: by an admin, or after failing for days (set enabled"
        " to true again to resume)"
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str
    """Shown when the webhook is created or its secret rotated, never again."""


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    manual: bool
    started_at: datetime
    duration_ms: int
    status_code: int | None
    response_body: str | None
    error: str | None
    trace_id: str


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    webhook_id: uuid.UUID
    message_id: str
    event_type: str
    case_id: uuid.UUID | None
    status: Status
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any]
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


def _delivery(delivery: Any) -> dict[str, Any]:
    fields = DeliveryOut.model_fields.keys() - {"webhook_id"}
    return {name: getattr(delivery, name) for name in fields} | {
        "webhook_id": delivery.subscription_id
    }


@router.post("/webhooks", response_model=WebhookWithSecret, status_code=status.HTTP_201_CREATED)
async def create(
    body: WebhookSpec, principal: PrincipalDep, uow: UnitOfWorkDep, container: ContainerDep
) -> WebhookWithSecret:
    made, secret = await webhooks.create_webhook(uow, principal, container.box, container.hub, body)
    return WebhookWithSecret.model_validate(
        WebhookOut.model_validate(made).model_dump() | {"secret": secret}
    )


@router.get("/webhooks", response_model=list[WebhookOut], summary="The tenant's webhooks (admins)")
async def list_webhooks(principal: PrincipalDep, uow: UnitOfWorkDep) -> list[WebhookOut]:
    principal.require(Role.ADMIN, "reading webhooks")
    return [WebhookOut.model_validate(w) for w in await uow.webhooks.all()]


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut)
async def read(webhook_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep) -> WebhookOut:
    principal.require(Role.ADMIN, "reading webhooks")
    return WebhookOut.model_validate(await uow.webhooks.get(webhook_id))


@router.put("/webhooks/{webhook_id}", response_model=WebhookOut)
async def replace(
    webhook_id: uuid.UUID,
    body: WebhookSpec,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
) -> WebhookOut:
    changed = await webhooks.replace_webhook(uow, principal, container.hub, webhook_id, body)
    return WebhookOut.model_validate(changed)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    summary="A new signing secret; messages are signed with it from now on",
)
async def rotate(
    webhook_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep, container: ContainerDep
) -> WebhookWithSecret:
    changed, secret = await webhooks.rotate_secret(uow, principal, container.box, webhook_id)
    return WebhookWithSecret.model_validate(
        WebhookOut.model_validate(changed).model_dump() | {"secret": secret}
    )


@router.delete("/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(webhook_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep) -> Response:
    await webhooks.delete_webhook(uow, principal, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhooks/{webhook_id}/test",
    response_model=DeliveryOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a webhook.test message now",
)
async def test(webhook_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep) -> DeliveryOut:
    delivery = await webhooks.send_test(uow, principal, webhook_id)
    return DeliveryOut.model_validate(_delivery(delivery))


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    summary="The webhook's deliveries, newest first",
)
async def deliveries(
    webhook_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    delivery_status: Annotated[Status | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: CursorParam = None,
) -> DeliveryPage:
    principal.require(Role.ADMIN, "reading webhook deliveries")
    await uow.webhooks.get(webhook_id)
    page = await uow.deliveries.of_subscription(
        webhook_id, status=delivery_status, limit=limit, cursor=cursor
    )
    return DeliveryPage(
        items=[DeliveryOut.model_validate(_delivery(d)) for d in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/webhook-deliveries/{delivery_id}", response_model=DeliveryDetail)
async def delivery(
    delivery_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> DeliveryDetail:
    principal.require(Role.ADMIN, "reading webhook deliveries")
    found = await uow.deliveries.get(delivery_id)
    attempts = [AttemptOut.model_validate(a) for a in await uow.deliveries.attempts(found.id)]
    return DeliveryDetail.model_validate(
        _delivery(found) | {"payload": found.payload, "attempt_log": attempts}
    )


@router.post(
    "/webhook-deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Try a finished delivery once more, now, with the same webhook-id",
)
async def redeliver(
    delivery_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> DeliveryOut:
    return DeliveryOut.model_validate(
        _delivery(await webhooks.redeliver(uow, principal, delivery_id))
    )
