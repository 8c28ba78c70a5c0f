from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict

from casedesk.activities import time_rules
from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep, UnitOfWorkDep
from casedesk.domain.automation.time_rules import Since, TimeRuleSpec

router = APIRouter(prefix=f"{API_V1}/time-rules", tags=["automation"])


class TimeRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    enabled: bool
    position: int
    since: Since
    hours: int
    minutes: int
    calendar: dict[str, Any] | None
    conditions: dict[str, Any]
    actions: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


@router.post("", response_model=TimeRuleOut, status_code=status.HTTP_201_CREATED)
async def create(body: TimeRuleSpec, principal: PrincipalDep, uow: UnitOfWorkDep) -> TimeRuleOut:
    return TimeRuleOut.model_validate(await time_rules.create_time_rule(uow, principal, body))


@router.get("", response_model=list[TimeRuleOut], summary="The tenant's time rules, in order")
async def list_time_rules(uow: UnitOfWorkDep) -> list[TimeRuleOut]:
    return [TimeRuleOut.model_validate(rule) for rule in await uow.time_rules.in_order()]


@router.get("/{rule_id}", response_model=TimeRuleOut)
async def read(rule_id: uuid.UUID, uow: UnitOfWorkDep) -> TimeRuleOut:
    return TimeRuleOut.model_validate(await uow.time_rules.get(rule_id))


@router.put("/{rule_id}", response_model=TimeRuleOut)
async def replace(
    rule_id: uuid.UUID, body: TimeRuleSpec, principal: PrincipalDep, uow: UnitOfWorkDep
) -> TimeRuleOut:
    rule = await time_rules.replace_time_rule(uow, principal, rule_id, body)
    return TimeRuleOut.model_validate(rule)


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(rule_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep) -> Response:
    await time_rules.delete_time_rule(uow, principal, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
