from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from casedesk.api import API_V1
from casedesk.api.deps import UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.events import EVENTS, envelope
from casedesk.kit.errors import InvalidInput

router = APIRouter(prefix=API_V1, tags=["events"], route_class=ApiRoute)


class EventPage(BaseModel):
    items: list[dict[str, Any]]
    next_after: int | None


@router.get(
    "/events",
    response_model=EventPage,
    summary="The tenant's delivered events in order, as CloudEvents 1.0",
    description=(
        "Events appear here once the relay has delivered them, each with a `position` that only"
        " grows in the order they became visible: pass the last position you processed (or"
        " `next_after`) as `after` and no event is ever skipped."
    ),
)
async def read_events(
    uow: UnitOfWorkDep,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="the position of the last event seen")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    type: Annotated[list[str] | None, Query(description="only these event types")] = None,
) -> EventPage:
    unknown = sorted(name for name in set(type or ()) if name not in EVENTS)
    if unknown:
        raise InvalidInput(f"unknown event type(s): {', '.join(unknown)}", field="type")
    events = await uow.outbox.after(after, limit=limit, types=type or ())
    return EventPage(
        items=[envelope(event) | {"position": str(event.position)} for event in events],
        next_after=events[-1].position if events else None,
    )
