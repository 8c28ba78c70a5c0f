from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict

from casedesk.activities import rules
from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep, UnitOfWorkDep
from casedesk.domain.automation.rules import RuleSpec

router = APIRouter(prefix=f"{API_V1}/rules", tags=["automation"])


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    enabled: bool
    position: int
    on: list[str]
    conditions: dict[str, Any]
    actions: list[dict[str, Any]]
    stop: bool
    created_at: datetime
    updated_at: datetime


@router.post("", response_model=RuleOut, status_code=status.HTTP_201_CREATED)
async def create(body: RuleSpec, principal: PrincipalDep, uow: UnitOfWorkDep) -> RuleOut:
    return RuleOut.model_validate(await rules.create_rule(uow, principal, body))


@router.get("", response_model=list[RuleOut], summary="The tenant's rules in the order they run")
async def list_rules(uow: UnitOfWorkDep) -> list[RuleOut]:
    return [RuleOut.model_validate(rule) for rule in await uow.rules.in_order()]


@router.get("/{rule_id}", response_model=RuleOut)
async def read(rule_id: uuid.UUID, uow: UnitOfWorkDep) -> RuleOut:
    return RuleOut.model_validate(await uow.rules.get(rule_id))


@router.put("/{rule_id}", response_model=RuleOut)
async def replace(
    rule_id: uuid.UUID, body: RuleSpec, principal: PrincipalDep, uow: UnitOfWorkDep
) -> RuleOut:
    return RuleOut.model_validate(await rules.replace_rule(uow, principal, rule_id, body))


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(rule_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep) -> Response:
    await rules.delete_rule(uow, principal, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
