"""Saving views of the case list: anyone signed in keeps their own; admins share them.

A view names a built-in view and narrows it with the list's filters; the queue and template
it names must exist when it is saved (a 422 naming the field), as the list would refuse them.
"""

from __future__ import annotations

import uuid

from casedesk.domain.cases.lists import SavedViewIn
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.kit.errors import InvalidInput
from casedesk.store.models import SavedView
from casedesk.store.unit_of_work import UnitOfWork


async def _check(uow: UnitOfWork, principal: Principal, spec: SavedViewIn) -> None:
    if spec.shared:
        principal.require(Role.ADMIN, "sharing a view")
    if spec.filters.queue is not None and await uow.queues.by_code(spec.filters.queue) is None:
        raise InvalidInput(f"no queue {spec.filters.queue!r}", field="filters.queue")
    template = spec.filters.template
    if template is not None and await uow.templates.by_code(template) is None:
        raise InvalidInput(f"no template {template!r}", field="filters.template")


def _fill(view: SavedView, principal: Principal, spec: SavedViewIn) -> None:
    view.name, view.sort, view.position = spec.name, spec.sort, spec.position
    view.filters = spec.filters.model_dump(mode="json", exclude_none=True)
    view.owner_id = None if spec.shared else principal.user_id


async def create_view(uow: UnitOfWork, principal: Principal, spec: SavedViewIn) -> SavedView:
    await uow.begin_write()
    await _check(uow, principal, spec)
    view = SavedView(tenant_id=principal.tenant_id)
    _fill(view, principal, spec)
    uow.saved_views.add(view)
    await uow.commit()
    return view


async def _changeable(uow: UnitOfWork, principal: Principal, view_id: uuid.UUID) -> SavedView:
    view = await uow.saved_views.visible(view_id, principal.user_id)
    if view.owner_id is None:
        principal.require(Role.ADMIN, "changing a shared view")
    return view


async def update_view(
    uow: UnitOfWork, principal: Principal, view_id: uuid.UUID, spec: SavedViewIn
) -> SavedView:
    await uow.begin_write()
    view = await _changeable(uow, principal, view_id)
    await _check(uow, principal, spec)
    _fill(view, principal, spec)
    await uow.commit()
    return view


async def delete_view(uow: UnitOfWork, principal: Principal, view_id: uuid.UUID) -> None:
    await uow.begin_write()
    view = await _changeable(uow, principal, view_id)
    await uow.session.delete(view)
    await uow.commit()
