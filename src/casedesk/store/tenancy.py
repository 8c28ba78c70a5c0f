"""The tenant guard: every ORM query on tenant-scoped rows is filtered to one tenant.

A session is bound to a tenant when it is opened. A query on tenant-scoped rows in a
session bound to no tenant raises :class:`TenantScopeViolation` unless the statement
says ``execution_options(all_tenants=True)`` — so no query can forget the tenant.
New rows get the session's tenant, and a row for another tenant cannot be flushed.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from casedesk.kit.errors import TenantScopeViolation
from casedesk.store.base import TenantScoped

TENANT_KEY = "casedesk_tenant_id"
ALL_TENANTS = "all_tenants"


def bind(session: AsyncSession, tenant_id: uuid.UUID | None) -> None:
    session.sync_session.info[TENANT_KEY] = tenant_id


def bound_tenant(session: Session) -> uuid.UUID | None:
    value: uuid.UUID | None = session.info.get(TENANT_KEY)
    return value


def _touches_tenant_rows(state: ORMExecuteState) -> bool:
    return any(issubclass(mapper.class_, TenantScoped) for mapper in state.all_mappers)


@event.listens_for(Session, "do_orm_execute")
def _scope_to_tenant(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the parent query already carried the criteria
    if state.execution_options.get(ALL_TENANTS, False):
        return
    tenant_id = bound_tenant(state.session)
    if tenant_id is None:
        if _touches_tenant_rows(state):
            raise TenantScopeViolation(
                "query on tenant-scoped rows in a session bound to no tenant; "
                "bind the session to a tenant or say execution_options(all_tenants=True)"
            )
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
        )
    )


@event.listens_for(Session, "before_flush")
def _stamp_new_rows(session: Session, _flush_context: Any, _instances: Any) -> None:
    tenant_id = bound_tenant(session)
    for obj in session.new:
        if not isinstance(obj, TenantScoped):
            continue
        if obj.tenant_id is None:
            if tenant_id is None:
                raise TenantScopeViolation(f"new {type(obj).__name__} has no tenant")
            obj.tenant_id = tenant_id
        elif tenant_id is not None and obj.tenant_id != tenant_id:
            raise TenantScopeViolation(f"new {type(obj).__name__} belongs to another tenant")
    for obj in session.dirty:
        if isinstance(obj, TenantScoped) and tenant_id is not None and obj.tenant_id != tenant_id:
            raise TenantScopeViolation(f"{type(obj).__name__} moved to another tenant")
