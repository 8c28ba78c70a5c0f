"""The API-key lookup of authentication as one Core statement, and the key's touch.

Authentication runs on every API request, before any tenant is known. Reading the key, its
user and its tenant as plain columns keeps the ORM's identity map out of that path; the
statement names the key by its unique hash, so it reads one row of one tenant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.kit.clock import utcnow
from casedesk.store.models import ApiKey, Tenant, User

_keys = cast(Table, ApiKey.__table__)
_users, _tenants = User.__table__, Tenant.__table__

_BY_HASH = (
    select(
        _keys.c.id.label("key_id"),
        _keys.c.revoked_at,
        _keys.c.expires_at,
        _keys.c.last_used_at,
        _users.c.id.label("user_id"),
        _users.c.email,
        _users.c.name.label("user_name"),
        _users.c.role,
        _users.c.active,
        _users.c.availability,
        _tenants.c.id.label("tenant_id"),
        _tenants.c.slug.label("tenant_slug"),
        _tenants.c.name.label("tenant_name"),
        _tenants.c.edition,
        _tenants.c.enabled.label("tenant_enabled"),
    )
    .select_from(
        _keys.join(_users, _users.c.id == _keys.c.user_id).join(
            _tenants, _tenants.c.id == _keys.c.tenant_id
        )
    )
    .where(_keys.c.key_hash == bindparam("key_hash"))
)


@dataclass(frozen=True, slots=True)
class PresentedKey:
    """An API key as authentication needs it: the key, its user and its tenant."""

    key_id: uuid.UUID
    revoked_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None
    user_id: uuid.UUID
    email: str
    user_name: str
    role: str
    active: bool
    availability: str
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    edition: str
    tenant_enabled: bool


async def key_by_hash(session: AsyncSession, key_hash: str) -> PresentedKey | None:
    """The key whose SHA-256 is ``key_hash``, with its user and tenant (any tenant)."""
    connection = await session.connection()
    row = (await connection.execute(_BY_HASH, {"key_hash": key_hash})).first()
    return None if row is None else PresentedKey(**row._mapping)


async def touch_key(session: AsyncSession, key_id: uuid.UUID, interval: timedelta) -> None:
    """Write the key's ``last_used_at``, unless another process did within ``interval``."""
    now = utcnow()
    connection = await session.connection()
    await connection.execute(
        update(_keys)
        .where(
            _keys.c.id == key_id,
            or_(_keys.c.last_used_at.is_(None), _keys.c.last_used_at <= now - interval),
        )
        .values(last_used_at=now)
    )
