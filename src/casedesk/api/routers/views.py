"""Saved views of the case list: the caller's own and the shared ones."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ValidationError

from casedesk.activities import saved_views
from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.cases.lists import SavedViewIn, ViewFilters, count_cases
from casedesk.kit.errors import CasedeskError
from casedesk.store.models import SavedView

router = APIRouter(prefix=f"{API_V1}/views", tags=["views"], route_class=ApiRoute)
COUNT_CAP = 1000
"""Views count their cases no further than this (``count_capped`` says there are more)."""


class SavedViewOut(BaseModel):
    id: uuid.UUID
    name: str
    filters: dict[str, Any]
    sort: str
    shared: bool
    owner_id: uuid.UUID | None
    position: int
    created_at: datetime
    updated_at: datetime
    count: int | None = None
    """With ``counts=true``: how many cases the view lists now (at most ``COUNT_CAP``)."""
    count_capped: bool | None = None
    """With ``counts=true``: whether it lists more than ``count``."""


def _out(view: SavedView) -> SavedViewOut:
    return SavedViewOut(
        id=view.id,
        name=view.name,
        filters=view.filters,
        sort=view.sort,
        shared=view.owner_id is None,
        owner_id=view.owner_id,
        position=view.position,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


@router.get("", response_model=list[SavedViewOut], summary="The shared views, then your own")
async def list_views(
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    counts: bool = Query(
        False,
        description=f"each view's count of the cases it lists now, up to {COUNT_CAP} "
        "(`count_capped` when there are more), as the workbench's sidebar shows them",
    ),
) -> list[SavedViewOut]:
    views = await uow.saved_views.visible_to(principal.user_id)
    answered = [_out(view) for view in views]
    if counts:
        for view, out in zip(views, answered, strict=True):
            try:
                query = ViewFilters.model_validate(view.filters).query(principal.user_id)
                found = await count_cases(uow, query, cap=COUNT_CAP)
            except (CasedeskError, ValidationError):
                found = 0  # it names a queue or a template deleted since: it lists nothing
            out.count, out.count_capped = min(found, COUNT_CAP), found > COUNT_CAP
    return answered


@router.post("", response_model=SavedViewOut, status_code=status.HTTP_201_CREATED)
async def create_view(
    body: SavedViewIn, principal: PrincipalDep, uow: UnitOfWorkDep
) -> SavedViewOut:
    return _out(await saved_views.create_view(uow, principal, body))


@router.get("/{view_id}", response_model=SavedViewOut)
async def read_view(
    view_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> SavedViewOut:
    return _out(await uow.saved_views.visible(view_id, principal.user_id))


@router.put("/{view_id}", response_model=SavedViewOut)
async def update_view(
    view_id: uuid.UUID, body: SavedViewIn, principal: PrincipalDep, uow: UnitOfWorkDep
) -> SavedViewOut:
    return _out(await saved_views.update_view(uow, principal, view_id, body))


@router.delete("/{view_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_view(view_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep) -> Response:
    await saved_views.delete_view(uow, principal, view_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
