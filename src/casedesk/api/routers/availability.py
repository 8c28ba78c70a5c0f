"""The caller's own availability for automatic assignment."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from casedesk.activities.availability import availability_of, set_availability
from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.assignment import Availability

router = APIRouter(prefix=API_V1, tags=["identity"], route_class=ApiRoute)


class AvailabilityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    availability: Availability


@router.get("/me/availability", response_model=AvailabilityBody)
async def read_availability(principal: PrincipalDep, uow: UnitOfWorkDep) -> AvailabilityBody:
    return AvailabilityBody(availability=await availability_of(uow, principal))


@router.put(
    "/me/availability",
    response_model=AvailabilityBody,
    summary="Available or away: automatic assignment passes over an away user",
)
async def put_availability(
    body: AvailabilityBody, principal: PrincipalDep, uow: UnitOfWorkDep
) -> AvailabilityBody:
    return AvailabilityBody(availability=await set_availability(uow, principal, body.availability))
