"""Repositories of the customers' portal sessions and sign-in links."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update

from casedesk.kit.clock import utcnow
from casedesk.store.models import Customer, PortalLink, PortalSession, Tenant
from casedesk.store.repository import Repository
from casedesk.store.tenancy import ALL_TENANTS


class PortalSessionRepository(Repository[PortalSession]):
    model = PortalSession
    label = "portal session"

    async def by_hash_any_tenant(
        self, token_hash: str
    ) -> tuple[PortalSession, Customer, Tenant] | None:
        """Resolve a portal cookie, before any tenant is bound."""
        statement = (
            select(PortalSession, Customer, Tenant)
            .join(Customer, Customer.id == PortalSession.customer_id)
            .join(Tenant, Tenant.id == PortalSession.tenant_id)
            .where(PortalSession.token_hash == token_hash)
            .execution_options(**{ALL_TENANTS: True})
        )
        row = (await self.session.execute(statement)).first()
        return None if row is None else (row[0], row[1], row[2])

    async def touch_any_tenant(self, session_id: uuid.UUID) -> None:
        await self.session.execute(
            update(PortalSession)
            .where(PortalSession.id == session_id)
            .values(last_seen_at=utcnow())
            .execution_options(**{ALL_TENANTS: True, "synchronize_session": False})
        )


class PortalLinkRepository(Repository[PortalLink]):
    model = PortalLink
    label = "portal link"

    async def by_hash(self, token_hash: str) -> PortalLink | None:
        found: PortalLink | None = await self.session.scalar(
            select(PortalLink).where(PortalLink.token_hash == token_hash)
        )
        return found

    async def newest_of(self, customer_id: uuid.UUID) -> datetime | None:
        """When the customer's newest link was issued (None: never)."""
        statement = (
            select(PortalLink.created_at)
            .where(PortalLink.customer_id == customer_id)
            .order_by(PortalLink.created_at.desc())
            .limit(1)
        )
        newest: datetime | None = await self.session.scalar(statement)
        return newest

    async def spend_others(self, customer_id: uuid.UUID) -> None:
        """Every unused link of the customer stops working (a new one replaces them)."""
        await self.session.execute(
            update(PortalLink)
            .where(PortalLink.customer_id == customer_id, PortalLink.used_at.is_(None))
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
