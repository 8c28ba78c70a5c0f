"""Resolve a presented API key to a principal."""

from __future__ import annotations

from datetime import timedelta

from casedesk.domain.identity.keys import hash_key, looks_like_key
from casedesk.domain.identity.principal import Principal, principal_of
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import Unauthenticated
from casedesk.store.models import ApiKey
from casedesk.store.unit_of_work import UnitOfWork


def _needs_touch(key: ApiKey, interval: timedelta) -> bool:
    return key.last_used_at is None or utcnow() - key.last_used_at >= interval


async def authenticate(
    uow: UnitOfWork, token: str, touch_interval: timedelta
) -> tuple[Principal, bool]:
    """The principal behind ``token`` (401 for an unknown, revoked or expired key), and
    whether the key's ``last_used_at`` is older than ``touch_interval``."""
    if not looks_like_key(token):
        raise Unauthenticated("the bearer token is not a casedesk API key")
    found = await uow.api_keys.by_hash_any_tenant(hash_key(token))
    if found is None:
        raise Unauthenticated("unknown API key")
    key, user, tenant = found
    now = utcnow()
    if key.revoked_at is not None:
        raise Unauthenticated("this API key was revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated("this API key has expired")
    if not user.active:
        raise Unauthenticated("the user of this API key is deactivated")
    if not tenant.enabled:
        raise Unauthenticated("this tenant is disabled")
    principal = principal_of(user, tenant, api_key_id=key.id)
    return principal, _needs_touch(key, touch_interval)
