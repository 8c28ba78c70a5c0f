"""Resolve a presented API key to a principal."""

from __future__ import annotations

from casedesk.domain.identity.keys import looks_like_key
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import Unauthenticated
from casedesk.store.key_reads import PresentedKey


def check_token(token: str) -> None:
    if not looks_like_key(token):
        raise Unauthenticated("the bearer token is not a casedesk API key")


def principal_of_key(found: PresentedKey | None) -> Principal:
    """The principal behind a key read by its hash (401 for an unknown, revoked or expired
    key, a deactivated user, a disabled tenant)."""
    if found is None:
        raise Unauthenticated("unknown API key")
    if found.revoked_at is not None:
        raise Unauthenticated("this API key was revoked")
    if found.expires_at is not None and found.expires_at <= utcnow():
        raise Unauthenticated("this API key has expired")
    if not found.active:
        raise Unauthenticated("the user of this API key is deactivated")
    if not found.tenant_enabled:
        raise Unauthenticated("this tenant is disabled")
    return Principal(
        tenant_id=found.tenant_id,
        tenant_slug=found.tenant_slug,
        tenant_name=found.tenant_name,
        edition=found.edition,
        user_id=found.user_id,
        email=found.email,
        name=found.user_name,
        role=Role(found.role),
        api_key_id=found.key_id,
        availability=found.availability,
    )
