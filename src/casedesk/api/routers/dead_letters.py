from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep, UnitOfWorkDep
from casedesk.domain.identity.roles import Role

router = APIRouter(prefix=API_V1, tags=["events"])


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    consumer_group: str
    event_id: uuid.UUID
    type: str
    sequence: int
    attempts: int
    error: str
    envelope: dict[str, Any]
    created_at: datetime


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None


@router.get(
    "/dead-letters",
    response_model=DeadLetterPage,
    summary="Events a consumer gave up on after its attempts (admins)",
)
async def list_dead_letters(
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    group: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> DeadLetterPage:
    principal.require(Role.ADMIN, "reading dead letters")
    page = await uow.dead_letters.list_page(group=group, limit=limit, cursor=cursor)
    return DeadLetterPage(
        items=[DeadLetterOut.model_validate(item) for item in page.items],
        next_cursor=page.next_cursor,
    )
