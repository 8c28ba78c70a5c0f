"""Event rules and time rules: the same five operations on two ordered lists.

This module does not postpone its annotations: the routes are made by one function, and
FastAPI reads each route's body and response types from the annotations as they are made.
"""

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict

from casedesk.activities.rules import EVENT_RULES, TIME_RULES, RuleKind
from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.automation.rules import RuleSpec
from casedesk.domain.automation.time_rules import Since, TimeRuleSpec


class _RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    enabled: bool
    position: int
    conditions: dict[str, Any]
    actions: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class RuleOut(_RuleOut):
    on: list[str]
    stop: bool


class TimeRuleOut(_RuleOut):
    since: Since
    hours: int
    minutes: int
    calendar: dict[str, Any] | None


def _routes(
    path: str, kind: RuleKind[Any, Any], spec: type[BaseModel], out: type[BaseModel]
) -> APIRouter:
    router = APIRouter(prefix=f"{API_V1}/{path}", tags=["automation"], route_class=ApiRoute)
    many = list[out]  # type: ignore[valid-type]

    @router.post("", response_model=out, status_code=status.HTTP_201_CREATED)
    async def create(
        body: spec,  # type: ignore[valid-type]
        principal: PrincipalDep,
        uow: UnitOfWorkDep,
    ) -> Any:
        return out.model_validate(await kind.create(uow, principal, body))

    @router.get("", response_model=many, summary=f"The tenant's {kind.label}s, in order")
    async def list_rules(uow: UnitOfWorkDep) -> Any:
        return [out.model_validate(rule) for rule in await kind.repository(uow).in_order()]

    @router.get("/{rule_id}", response_model=out)
    async def read(rule_id: uuid.UUID, uow: UnitOfWorkDep) -> Any:
        return out.model_validate(await kind.repository(uow).get(rule_id))

    @router.put("/{rule_id}", response_model=out)
    async def replace(
        rule_id: uuid.UUID,
        body: spec,  # type: ignore[valid-type]
        principal: PrincipalDep,
        uow: UnitOfWorkDep,
    ) -> Any:
        return out.model_validate(await kind.replace(uow, principal, rule_id, body))

    @router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete(rule_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep) -> Response:
        await kind.delete(uow, principal, rule_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


router = _routes("rules", EVENT_RULES, RuleSpec, RuleOut)
time_rules_router = _routes("time-rules", TIME_RULES, TimeRuleSpec, TimeRuleOut)
