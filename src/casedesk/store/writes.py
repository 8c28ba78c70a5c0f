"""Inserting new rows in as few statements as the database allows, without the ORM's flush.

An activity knows every value of the rows it creates (ids are UUIDv7 made in Python, times
come from the clock), so nothing needs to be read back: each table's new rows go out as one
INSERT (several rows: one executemany), with no RETURNING and no refresh. Rows the rest of
the transaction may still change (a case, its task, a comment) are then attached to the
session as if just loaded, so later changes to them are ordinary ORM updates (with the
version check of ``version_id_col``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from casedesk.kit.errors import TenantScopeViolation
from casedesk.store.base import TenantScoped
from casedesk.store.tenancy import bound_tenant


def row_of(obj: Any) -> dict[str, Any]:
    """The column values of a new object, with the columns' Python defaults filled in (and
    set on the object, so that every attribute is loaded). A version column starts at 1."""
    mapper = inspect(type(obj))
    values: dict[str, Any] = {}
    given = obj.__dict__
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if prop.key in given:
            value = given[prop.key]
        elif column is mapper.version_id_col:
            value = 1
        elif column.default is not None and column.default.is_callable:
            value = column.default.arg(None)
        elif column.default is not None and column.default.is_scalar:
            value = column.default.arg
        elif column.primary_key and column.autoincrement in (True, "auto"):
            continue  # the database numbers it; nobody reads it back
        elif column.server_default is not None:
            name = f"{type(obj).__name__}.{prop.key}"
            raise ValueError(f"{name} needs a value: only the server knows its default")
        else:
            value = None
        setattr(obj, prop.key, value)
        values[column.key] = value
    return values


def _stamp_tenant(session: AsyncSession, obj: Any) -> None:
    """The tenant guard's rule for new rows, which the ORM's flush would otherwise apply."""
    if not isinstance(obj, TenantScoped):
        return
    tenant_id = bound_tenant(session.sync_session)
    if obj.tenant_id is None:
        if tenant_id is None:
            raise TenantScopeViolation(f"new {type(obj).__name__} has no tenant")
        obj.tenant_id = tenant_id
    elif tenant_id is not None and obj.tenant_id != tenant_id:
        raise TenantScopeViolation(f"new {type(obj).__name__} belongs to another tenant")


async def insert_rows(session: AsyncSession, objects: Sequence[Any], *, attach: bool) -> None:
    """INSERT the new objects now, one statement per run of objects of one table, in the
    given order (a row before the rows that refer to it). With ``attach`` the objects join
    the session as persistent rows; without, they are left out of it (rows nobody changes
    afterwards: action records, outbox events)."""
    for obj in objects:
        _stamp_tenant(session, obj)
    for table, group in itertools.groupby(objects, key=lambda obj: obj.__table__):
        rows = [row_of(obj) for obj in group]
        await session.execute(insert(table), rows if len(rows) > 1 else rows[0])
    if attach:
        for obj in objects:
            make_transient_to_detached(obj)
            session.add(obj)
