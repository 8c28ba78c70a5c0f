from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from casedesk.activities import identity
from casedesk.activities import sign_in as signing
from casedesk.api import API_V1
from casedesk.api.deps import ContainerDep, CursorParam, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.api.schemas.identity import (
    PasswordLinkIn,
    PasswordLinkOut,
    UserCreate,
    UserOut,
    UserPage,
    UserUpdate,
)

router = APIRouter(prefix=f"{API_V1}/users", tags=["users"], route_class=ApiRoute)

Limit = Annotated[int, Query(ge=1, le=200, description="page size")]


@router.get("", response_model=UserPage, summary="List the tenant's users")
async def list_users(uow: UnitOfWorkDep, limit: Limit = 50, cursor: CursorParam = None) -> UserPage:
    page = await uow.users.list_page(limit=limit, cursor=cursor)
    return UserPage(
        items=[UserOut.model_validate(user) for user in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "", response_model=UserOut, status_code=status.HTTP_201_CREATED, summary="Create a user"
)
async def create_user(body: UserCreate, principal: PrincipalDep, uow: UnitOfWorkDep) -> UserOut:
    user = await identity.create_user(
        uow, principal, email=body.email, name=body.name, role=body.role
    )
    return UserOut.model_validate(user)


@router.get("/{user_id}", response_model=UserOut, summary="Read a user")
async def read_user(user_id: uuid.UUID, uow: UnitOfWorkDep) -> UserOut:
    return UserOut.model_validate(await uow.users.get(user_id))


@router.patch("/{user_id}", response_model=UserOut, summary="Rename, change role, (de)activate")
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, principal: PrincipalDep, uow: UnitOfWorkDep
) -> UserOut:
    user = await identity.update_user(
        uow, principal, user_id, name=body.name, role=body.role, active=body.active
    )
    return UserOut.model_validate(user)


@router.post(
    "/{user_id}/password-link",
    response_model=PasswordLinkOut,
    status_code=status.HTTP_201_CREATED,
    summary="A one-time link for the user to set a password (an invitation or a reset)",
)
async def password_link(
    user_id: uuid.UUID,
    body: PasswordLinkIn,
    request: Request,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
) -> PasswordLinkOut:
    """Mailed to the user when a mailbox sends the tenant's mail (``sent: true``, no
    ``url``); otherwise the link is in the answer."""
    base = container.settings.public_url or str(request.base_url).rstrip("/")
    handed = await signing.hand_out_link(
        uow, principal, container.box, user_id=user_id, base_url=base, purpose=body.purpose
    )
    sent = handed.mailed_to is not None
    return PasswordLinkOut(
        purpose=handed.issued.link.purpose,
        sent=sent,
        url=None if sent else handed.url,
        expires_at=handed.issued.link.expires_at,
    )
