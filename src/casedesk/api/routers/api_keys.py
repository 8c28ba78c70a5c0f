from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from casedesk.activities import identity
from casedesk.api import API_V1
from casedesk.api.deps import CursorParam, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.api.schemas.identity import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyPage
from casedesk.domain.identity.roles import Role

router = APIRouter(prefix=f"{API_V1}/api-keys", tags=["api keys"], route_class=ApiRoute)

Limit = Annotated[int, Query(ge=1, le=200, description="page size")]


@router.get("", response_model=ApiKeyPage, summary="List API keys (admins: all; others: own)")
async def list_api_keys(
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    limit: Limit = 50,
    cursor: CursorParam = None,
    user_id: uuid.UUID | None = None,
) -> ApiKeyPage:
    if not principal.role.at_least(Role.ADMIN):
        user_id = principal.user_id
    page = await uow.api_keys.list_page(limit=limit, cursor=cursor, user_id=user_id)
    return ApiKeyPage(
        items=[ApiKeyOut.model_validate(key) for key in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key; the key is in this response only",
)
async def create_api_key(
    body: ApiKeyCreate, principal: PrincipalDep, uow: UnitOfWorkDep
) -> ApiKeyCreated:
    created = await identity.create_api_key(
        uow,
        principal,
        name=body.name,
        user_id=body.user_id or principal.user_id,
        expires_at=body.expires_at,
    )
    out = ApiKeyOut.model_validate(created.key)
    return ApiKeyCreated(**out.model_dump(), key=created.plaintext)


@router.get("/{key_id}", response_model=ApiKeyOut, summary="Read an API key's metadata")
async def read_api_key(key_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep) -> ApiKeyOut:
    return ApiKeyOut.model_validate(await identity.visible_api_key(uow, principal, key_id))


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke an API key")
async def revoke_api_key(
    key_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> Response:
    await identity.revoke_api_key(uow, principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
