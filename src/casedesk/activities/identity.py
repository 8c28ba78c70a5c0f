"""Identity operations: tenants, users and API keys.

Each function is one business operation: it checks the caller's role, applies the
domain rules, and commits through the unit of work it was given.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from casedesk.domain.identity.authentication import check_token, principal_of_key
from casedesk.domain.identity.keys import hash_key, issue_key
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.principal_cache import CachedPrincipal, PrincipalCache
from casedesk.domain.identity.roles import Role
from casedesk.domain.identity.users import ensure_admin_remains, ensure_email_free, normalise_email
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import Conflict, InvalidInput, NotFound
from casedesk.kit.ids import uuid7
from casedesk.store.database import Database
from casedesk.store.key_reads import key_by_hash, touch_key
from casedesk.store.models import ApiKey, Tenant, User
from casedesk.store.unit_of_work import UnitOfWork

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    plaintext: str


async def create_tenant(uow: UnitOfWork, *, slug: str, name: str, edition: str) -> Tenant:
    await uow.begin_write()
    if not _SLUG.match(slug):
        raise InvalidInput(
            "slug must be 1-63 lower-case letters, digits or inner hyphens", field="slug"
        )
    if await uow.tenants.by_slug(slug) is not None:
        raise Conflict(f"a tenant with slug {slug!r} already exists", field="slug")
    tenant = uow.tenants.add(Tenant(id=uuid7(), slug=slug, name=name, edition=edition))
    await uow.flush()
    await uow.cases.start_numbering(tenant.id)
    await uow.commit()
    return tenant


async def create_user(
    uow: UnitOfWork, actor: Principal | None, *, email: str, name: str, role: Role
) -> User:
    if actor is not None:
        actor.require(Role.ADMIN, "creating a user")
    await uow.begin_write()
    email = normalise_email(email)
    await ensure_email_free(uow, email)
    user = uow.users.add(User(email=email, name=name, role=role.value, active=True))
    await uow.commit()
    return user


async def update_user(
    uow: UnitOfWork,
    actor: Principal,
    user_id: uuid.UUID,
    *,
    name: str | None = None,
    role: Role | None = None,
    active: bool | None = None,
) -> User:
    actor.require(Role.ADMIN, "changing a user")
    await uow.begin_write()
    user = await uow.users.get(user_id)
    new_role = role if role is not None else Role(user.role)
    new_active = active if active is not None else user.active
    await ensure_admin_remains(uow, user, new_role, new_active)
    if name is not None:
        user.name = name
    user.role = new_role.value
    user.active = new_active
    await uow.commit()
    return user


async def create_api_key(
    uow: UnitOfWork,
    actor: Principal | None,
    *,
    name: str,
    user_id: uuid.UUID,
    expires_at: datetime | None = None,
) -> CreatedKey:
    if actor is not None and actor.user_id != user_id:
        actor.require(Role.ADMIN, "creating an API key for another user")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expires_at must be in the future", field="expires_at")
    await uow.begin_write()
    user = await uow.users.get(user_id)
    if not user.active:
        raise Conflict("cannot create a key for a deactivated user", field="user_id")
    issued = issue_key()
    key = uow.api_keys.add(
        ApiKey(
            user_id=user.id,
            name=name,
            prefix=issued.prefix,
            key_hash=issued.key_hash,
            expires_at=expires_at,
        )
    )
    await uow.commit()
    return CreatedKey(key=key, plaintext=issued.plaintext)


async def visible_api_key(uow: UnitOfWork, actor: Principal, key_id: uuid.UUID) -> ApiKey:
    """Admins see every key of the tenant; others only their own (another's is a 404)."""
    key = await uow.api_keys.get(key_id)
    if key.user_id != actor.user_id and not actor.role.at_least(Role.ADMIN):
        raise NotFound(f"API key {key_id} not found")
    return key


async def revoke_api_key(uow: UnitOfWork, actor: Principal | None, key_id: uuid.UUID) -> ApiKey:
    await uow.begin_write()
    key = (
        await uow.api_keys.get(key_id)
        if actor is None
        else await visible_api_key(uow, actor, key_id)
    )
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    await uow.commit()
    return key


async def authenticate(
    database: Database, cache: PrincipalCache, token: str, touch_interval: timedelta
) -> Principal:
    """Resolve the request's key and record its use (at most once per ``touch_interval``).

    A principal read in the last few seconds comes from ``cache``; otherwise the key is read
    in a transaction that is rolled back. Its use is written in a transaction of its own, so
    the lookup itself never takes a write lock.
    """
    check_token(token)
    key_hash = hash_key(token)
    entry = cache.get(key_hash) or await _read_key(database, cache, key_hash)
    now = utcnow()
    if entry.touched_at is None or now - entry.touched_at >= touch_interval:
        async with UnitOfWork(database) as uow:
            await uow.begin_write()
            await touch_key(uow.session, entry.key_id, touch_interval)
            await uow.commit()
        entry.touched_at = now
    return entry.principal


async def _read_key(database: Database, cache: PrincipalCache, key_hash: str) -> CachedPrincipal:
    read_at = cache.generation()
    async with UnitOfWork(database) as uow:
        found = await key_by_hash(uow.session, key_hash)
    principal = principal_of_key(found)
    assert found is not None
    return cache.put(
        key_hash,
        principal,
        read_at_generation=read_at,
        key_id=found.key_id,
        key_expires_at=found.expires_at,
        touched_at=found.last_used_at,
    )
