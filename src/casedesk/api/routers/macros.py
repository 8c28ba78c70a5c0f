"""Macros: canned replies with placeholders and actions; applying one to a case."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.responses import JSONResponse

from casedesk.activities import macros
from casedesk.api import API_V1
from casedesk.api.deps import ActivityContextDep, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.cases.views import detail
from casedesk.domain.macros import PLACEHOLDERS, MacroAction, MacroSpec
from casedesk.store.models import Macro

router = APIRouter(prefix=API_V1, tags=["macros"], route_class=ApiRoute)


class MacroOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    body: str
    public: bool
    shared: bool
    owner_id: uuid.UUID | None
    actions: list[MacroAction]
    created_at: datetime
    updated_at: datetime


class MacroList(BaseModel):
    items: list[MacroOut]
    placeholders: list[str] = Field(description="the names a macro's text may use")


class ApplyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Annotated[str, StringConstraints(max_length=65_536)] | None = Field(
        default=None,
        description="the reply as the agent reviewed it; left out: the macro's text rendered",
    )


def _out(macro: Macro) -> MacroOut:
    spec = macros.macro_spec(macro)
    return MacroOut(
        id=macro.id,
        name=macro.name,
        body=macro.body,
        public=macro.public,
        shared=spec.shared,
        owner_id=macro.owner_id,
        actions=spec.actions,
        created_at=macro.created_at,
        updated_at=macro.updated_at,
    )


@router.get("/macros", response_model=MacroList, summary="The shared macros and the caller's own")
async def list_macros(principal: PrincipalDep, uow: UnitOfWorkDep) -> MacroList:
    found = await uow.macros.visible_to(principal.user_id)
    return MacroList(items=[_out(m) for m in found], placeholders=list(PLACEHOLDERS))


@router.post("/macros", response_model=MacroOut, status_code=status.HTTP_201_CREATED)
async def create_macro(body: MacroSpec, principal: PrincipalDep, uow: UnitOfWorkDep) -> MacroOut:
    return _out(await macros.create_macro(uow, principal, body))


@router.get("/macros/{macro_id}", response_model=MacroOut)
async def read_macro(macro_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep) -> MacroOut:
    return _out(await macros.visible_macro(uow, macro_id, principal.user_id))


@router.put("/macros/{macro_id}", response_model=MacroOut)
async def replace_macro(
    macro_id: uuid.UUID, body: MacroSpec, principal: PrincipalDep, uow: UnitOfWorkDep
) -> MacroOut:
    return _out(await macros.update_macro(uow, principal, macro_id, body))


@router.delete("/macros/{macro_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_macro(
    macro_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> Response:
    await macros.delete_macro(uow, principal, macro_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/cases/{case_id}/macros/{macro_id}",
    summary="Apply a macro: its reply as a comment, then its actions (If-Match checked)",
)
async def apply_macro(
    case_id: uuid.UUID,
    macro_id: uuid.UUID,
    context: ActivityContextDep,
    body: ApplyInput | None = None,
) -> JSONResponse:
    reply = body.body if body is not None else None
    case = await macros.apply_macro(context, case_id, macro_id, reply)
    view = await detail(context.uow, case, context.extensions, context.edition)
    return JSONResponse(view.model_dump(mode="json"), headers={"ETag": f'"{view.version}"'})
