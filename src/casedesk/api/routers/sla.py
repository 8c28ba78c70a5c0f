from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from casedesk.activities import sla_policies
from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.automation.sla import SlaPolicySpec
from casedesk.domain.cases.priority import Priority
from casedesk.store.models import SlaPolicy
from casedesk.store.unit_of_work import UnitOfWork

router = APIRouter(prefix=f"{API_V1}/sla-policies", tags=["automation"], route_class=ApiRoute)


class SlaPolicyOut(BaseModel):
    id: uuid.UUID
    name: str
    template: str | None
    priority: Priority | None
    first_response_minutes: int | None
    resolution_minutes: int | None
    warning_percent: int
    calendar: dict[str, Any]
    created_at: datetime
    updated_at: datetime


async def _out(uow: UnitOfWork, policy: SlaPolicy) -> SlaPolicyOut:
    template = await uow.templates.get(policy.template_id) if policy.template_id else None
    return SlaPolicyOut(
        id=policy.id,
        name=policy.name,
        template=template.code if template else None,
        priority=Priority.from_rank(policy.priority) if policy.priority is not None else None,
        first_response_minutes=policy.first_response_minutes,
        resolution_minutes=policy.resolution_minutes,
        warning_percent=policy.warning_percent,
        calendar=policy.calendar,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


@router.post("", response_model=SlaPolicyOut, status_code=status.HTTP_201_CREATED)
async def create(body: SlaPolicySpec, principal: PrincipalDep, uow: UnitOfWorkDep) -> SlaPolicyOut:
    return await _out(uow, await sla_policies.save_policy(uow, principal, body))


@router.get("", response_model=list[SlaPolicyOut])
async def list_policies(uow: UnitOfWorkDep) -> list[SlaPolicyOut]:
    return [await _out(uow, policy) for policy in await uow.sla.policies()]


@router.get("/{policy_id}", response_model=SlaPolicyOut)
async def read(policy_id: uuid.UUID, uow: UnitOfWorkDep) -> SlaPolicyOut:
    return await _out(uow, await uow.sla.get(policy_id))


@router.put("/{policy_id}", response_model=SlaPolicyOut)
async def replace(
    policy_id: uuid.UUID, body: SlaPolicySpec, principal: PrincipalDep, uow: UnitOfWorkDep
) -> SlaPolicyOut:
    return await _out(uow, await sla_policies.save_policy(uow, principal, body, policy_id))


@router.delete("/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(policy_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep) -> Response:
    await sla_policies.delete_policy(uow, principal, policy_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
