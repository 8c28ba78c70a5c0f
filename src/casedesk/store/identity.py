"""Repositories of tenants, users, API keys, browser sessions and one-time links."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.kit.clock import utcnow
from casedesk.store.models import ApiKey, OneTimeLink, Tenant, User, WebSession
from casedesk.store.repository import Page, Repository
from casedesk.store.tenancy import ALL_TENANTS


async def _found_by_hash(
    session: AsyncSession, model: Any, hashed: Any, token_hash: str
) -> tuple[Any, User, Tenant] | None:
    """A credential (a key, a session, a link) by its hash, with its user and tenant: the
    lookups allowed to look across tenants, as they come before any tenant is known."""
    statement = (
        select(model, User, Tenant)
        .join(User, User.id == model.user_id)
        .join(Tenant, Tenant.id == model.tenant_id)
        .where(hashed == token_hash)
        .execution_options(**{ALL_TENANTS: True})
    )
    row = (await session.execute(statement)).first()
    return None if row is None else (row[0], row[1], row[2])


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

    async def by_email_of_tenant(self, tenant_id: uuid.UUID, email: str) -> User | None:
        """A user found before any tenant is bound: at sign-in, by the workspace named."""
        statement = (
            select(User)
            .where(User.tenant_id == tenant_id, User.email == email)
            .execution_options(**{ALL_TENANTS: True})
        )
        result: User | None = await self.session.scalar(statement)
        return result

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
        """Resolve a presented key."""
        return await _found_by_hash(self.session, ApiKey, ApiKey.key_hash, key_hash)

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


class WebSessionRepository(Repository[WebSession]):
    model = WebSession
    label = "session"

    async def by_hash_any_tenant(self, token_hash: str) -> tuple[WebSession, User, Tenant] | None:
        """Resolve a session cookie."""
        return await _found_by_hash(self.session, WebSession, WebSession.token_hash, token_hash)

    async def touch_any_tenant(self, session_id: uuid.UUID) -> None:
        await self.session.execute(
            update(WebSession)
            .where(WebSession.id == session_id)
            .values(last_seen_at=utcnow())
            .execution_options(**{ALL_TENANTS: True, "synchronize_session": False})
        )

    async def end_all_of(self, user_id: uuid.UUID) -> int:
        """Sign the user out everywhere; how many sessions ended (the user's id names the
        tenant, so this also runs before one is bound, when a link sets a new password)."""
        result = await self.session.execute(
            update(WebSession)
            .where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .execution_options(**{ALL_TENANTS: True, "synchronize_session": False})
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class OneTimeLinkRepository(Repository[OneTimeLink]):
    model = OneTimeLink
    label = "link"

    async def by_hash_any_tenant(self, token_hash: str) -> tuple[OneTimeLink, User, Tenant] | None:
        return await _found_by_hash(self.session, OneTimeLink, OneTimeLink.token_hash, token_hash)

    async def newest_of(self, user_id: uuid.UUID) -> datetime | None:
        """When the user's latest link was made (a self-service reset waits after it)."""
        newest: datetime | None = await self.session.scalar(
            select(func.max(OneTimeLink.created_at)).where(OneTimeLink.user_id == user_id)
        )
        return newest

    async def spend_others(self, user_id: uuid.UUID, kept: uuid.UUID | None = None) -> None:
        """Every other unused link of the user stops working (a new one replaces them)."""
        statement = update(OneTimeLink).where(
            OneTimeLink.user_id == user_id, OneTimeLink.used_at.is_(None)
        )
        if kept is not None:
            statement = statement.where(OneTimeLink.id != kept)
        await self.session.execute(
            statement.values(used_at=utcnow()).execution_options(synchronize_session=False)
        )
