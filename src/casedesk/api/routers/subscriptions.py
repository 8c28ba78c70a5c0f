"""Subscriptions, for monitoring: where each workflow's trigger stands and how it fares."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from casedesk.api import API_V1
from casedesk.api.deps import ContainerDep, CursorParam, PrincipalDep, UnitOfWorkDep
from casedesk.api.routers.workflows import subscription_out
from casedesk.api.routing import ApiRoute
from casedesk.api.schemas.workflows import SubscriptionOut, SubscriptionPage, SubscriptionStatus

router = APIRouter(prefix=API_V1, tags=["workflows"], route_class=ApiRoute)


@router.get(
    "/subscriptions",
    response_model=SubscriptionPage,
    summary="Every workflow's subscription: status, cursor, failures, last error",
)
async def list_subscriptions(
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
    request: Request,
    status: Annotated[SubscriptionStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: CursorParam = None,
) -> SubscriptionPage:
    page = await uow.subscriptions.page_with_status(status, limit=limit, cursor=cursor)
    return SubscriptionPage(
        items=[
            await subscription_out(
                uow, item, principal=principal, container=container, request=request
            )
            for item in page.items
        ],
        next_cursor=page.next_cursor,
    )


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut)
async def read_subscription(
    subscription_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
    request: Request,
) -> SubscriptionOut:
    subscription = await uow.subscriptions.get(subscription_id)
    return await subscription_out(
        uow, subscription, principal=principal, container=container, request=request
    )
