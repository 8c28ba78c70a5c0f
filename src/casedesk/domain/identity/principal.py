"""Who is calling: resolved once per request from the API key or the browser session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from casedesk.domain.identity.roles import Role
from casedesk.kit.errors import Forbidden
from casedesk.store.models import Tenant, User


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    edition: str
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    api_key_id: uuid.UUID | None
    session_id: uuid.UUID | None = None
    availability: str = "available"
    """``available`` or ``away`` when the principal was read (the header's toggle shows it)"""

    def require(self, role: Role, doing: str) -> None:
        if not self.role.at_least(role):
            raise Forbidden(f"{doing} needs the {role} role; you are {self.role}")


def principal_of(
    user: User,
    tenant: Tenant,
    *,
    api_key_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
) -> Principal:
    """The principal of ``user`` in ``tenant``, calling with a key or from a session."""
    return Principal(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        tenant_name=tenant.name,
        edition=tenant.edition,
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        api_key_id=api_key_id,
        session_id=session_id,
        availability=user.availability,
    )
