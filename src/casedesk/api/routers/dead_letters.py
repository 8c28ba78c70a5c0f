from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from casedesk.activities import dead_letters
from casedesk.api import API_V1
from casedesk.api.deps import CursorParam, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.identity.roles import Role

router = APIRouter(prefix=f"{API_V1}/dead-letters", tags=["events"], route_class=ApiRoute)

ReplayStatus = Literal["pending", "succeeded", "failed"]


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
    replay_status: ReplayStatus | None = Field(
        description="null until a replay is asked for; then pending, succeeded or failed"
    )
    replay_requested_at: datetime | None
    replayed_at: datetime | None
    replay_error: str | None


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None


class BulkReplay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: str | None = Field(default=None, max_length=63, description="only this group's")
    limit: int = Field(default=100, ge=1, le=dead_letters.MAX_BULK_REPLAY)


class BulkReplayOut(BaseModel):
    scheduled: int
    ids: list[uuid.UUID]


@router.get(
    "",
    response_model=DeadLetterPage,
    summary="Events a consumer gave up on after its attempts (admins)",
)
async def list_dead_letters(
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    group: Annotated[str | None, Query(max_length=63)] = None,
    replay_status: Annotated[
        Literal["never", "pending", "succeeded", "failed"] | None,
        Query(description="`never` lists those nobody asked to replay yet"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: CursorParam = None,
) -> DeadLetterPage:
    principal.require(Role.ADMIN, "reading dead letters")
    page = await uow.dead_letters.list_page(
        group=group, replay_status=replay_status, limit=limit, cursor=cursor
    )
    return DeadLetterPage(
        items=[DeadLetterOut.model_validate(item) for item in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/replay",
    response_model=BulkReplayOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Replay every dead letter still dead (never replayed, or failed again), oldest first",
)
async def replay_many(
    body: BulkReplay, principal: PrincipalDep, uow: UnitOfWorkDep
) -> BulkReplayOut:
    chosen = await dead_letters.request_replays(uow, principal, group=body.group, limit=body.limit)
    return BulkReplayOut(scheduled=len(chosen), ids=[dead.id for dead in chosen])


@router.get("/{dead_letter_id}", response_model=DeadLetterOut)
async def read(
    dead_letter_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> DeadLetterOut:
    principal.require(Role.ADMIN, "reading dead letters")
    return DeadLetterOut.model_validate(await uow.dead_letters.get(dead_letter_id))


@router.post(
    "/{dead_letter_id}/replay",
    response_model=DeadLetterOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Hand the event to its consumer group once more, in a worker, as soon as one is free",
)
async def replay(
    dead_letter_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> DeadLetterOut:
    dead = await dead_letters.request_replay(uow, principal, dead_letter_id)
    return DeadLetterOut.model_validate(dead)


@router.delete("/{dead_letter_id}", status_code=status.HTTP_204_NO_CONTENT)
async def discard(
    dead_letter_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> Response:
    await dead_letters.discard(uow, principal, dead_letter_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
