"""Repositories of tenants, users and API keys."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update

from casedesk.kit.clock import utcnow
from casedesk.store.models import ApiKey, Tenant, User
from casedesk.store.repository import Page, Repository
from casedesk.store.tenancy import ALL_TENANTS


class TenantRepository(Repository[Tenant]):
    model = Tenant
    label = "tenant"

    async def by_slug(self, slug: str) -> Tenant | None:
        result: Tenant | None = await self.session.scalar(select(Tenant).where(Tenant.slug == slug))
        return result

    async def all(self) -> list[Tenant]:
        return list((await self.session.scalars(select(Tenant).order_by(Tenant.created_at))).all())


class UserRepository(Repository[User]):
    model = User
    label = "user"

    async def by_email(self, email: str) -> User | None:
        result: User | None = await self.session.scalar(select(User).where(User.email == email))
        return result

    async def list_page(self, *, limit: int, cursor: str | None) -> Page[User]:
        return await self.page(select(User), limit=limit, cursor=cursor)

    async def count_active_admins(self) -> int:
        statement = (
            select(func.count())
            .select_from(User)
            .where(User.role == "admin", User.active.is_(True))
        )
        return int(await self.session.scalar(statement) or 0)


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey
    label = "API key"

    async def by_hash_any_tenant(self, key_hash: str) -> tuple[ApiKey, User, Tenant] | None:
        """Resolve a presented key: the one query allowed to look across tenants."""
        statement = (
            select(ApiKey, User, Tenant)
            .join(User, User.id == ApiKey.user_id)
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.key_hash == key_hash)
            .execution_options(**{ALL_TENANTS: True})
        )
        row = (await self.session.execute(statement)).first()
        return None if row is None else (row[0], row[1], row[2])

    async def touch_any_tenant(self, key_id: uuid.UUID) -> None:
        await self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(last_used_at=utcnow())
            .execution_options(**{ALL_TENANTS: True, "synchronize_session": False})
        )

    async def list_page(
        self, *, limit: int, cursor: str | None, user_id: object = None
    ) -> Page[ApiKey]:
        statement = select(ApiKey)
        if user_id is not None:
            statement = statement.where(ApiKey.user_id == user_id)
        return await self.page(statement, limit=limit, cursor=cursor)
