"""The tenant guard in the data layer: no query can forget the tenant."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from casedesk.bootstrap import Container
from casedesk.kit.errors import TenantScopeViolation
from casedesk.store.models import User
from casedesk.store.tenancy import ALL_TENANTS
from tests.conftest import Tenants


async def test_a_session_bound_to_a_tenant_sees_only_its_rows(
    container: Container, tenants: Tenants
) -> None:
    a, b = await tenants.create(), await tenants.create()
    async with container.unit_of_work(a.id) as uow:
        users = (await uow.session.scalars(select(User))).all()
        counted = await uow.session.scalar(select(func.count()).select_from(User))
        foreign = await uow.users.find(b.admin_id)
    assert {user.tenant_id for user in users} == {a.id}
    assert counted == 1
    assert foreign is None


async def test_a_session_bound_to_no_tenant_refuses_tenant_rows(container: Container) -> None:
    async with container.unit_of_work() as uow:
        with pytest.raises(TenantScopeViolation):
            await uow.session.scalars(select(User))


async def test_looking_across_tenants_must_be_said(container: Container, tenants: Tenants) -> None:
    a, b = await tenants.create(), await tenants.create()
    async with container.unit_of_work() as uow:
        statement = select(User.tenant_id).execution_options(**{ALL_TENANTS: True})
        seen = set((await uow.session.scalars(statement)).all())
    assert {a.id, b.id} <= seen


async def test_bulk_update_touches_only_the_bound_tenant(
    container: Container, tenants: Tenants
) -> None:
    a, b = await tenants.create(), await tenants.create()
    async with container.unit_of_work(a.id) as uow:
        await uow.session.execute(
            update(User).values(name="renamed").execution_options(synchronize_session=False)
        )
        await uow.commit()
    async with container.unit_of_work(b.id) as uow:
        other = await uow.users.get(b.admin_id)
    async with container.unit_of_work(a.id) as uow:
        mine = await uow.users.get(a.admin_id)
    assert mine.name == "renamed"
    assert other.name != "renamed"


async def test_new_rows_take_the_session_tenant(container: Container, tenants: Tenants) -> None:
    a = await tenants.create()
    async with container.unit_of_work(a.id) as uow:
        user = uow.users.add(User(email="new@example.com", name="New", role="agent"))
        await uow.commit()
    assert user.tenant_id == a.id


async def test_a_row_of_another_tenant_cannot_be_written(
    container: Container, tenants: Tenants
) -> None:
    a, b = await tenants.create(), await tenants.create()
    async with container.unit_of_work(a.id) as uow:
        uow.users.add(User(tenant_id=b.id, email="x@example.com", name="X", role="agent"))
        with pytest.raises(TenantScopeViolation):
            await uow.flush()
