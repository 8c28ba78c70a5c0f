"""Who is calling: resolved once per request from the API key or the browser session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from casedesk.domain.identity.roles import Role
from casedesk.kit.errors import Forbidden


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

    def require(self, role: Role, doing: str) -> None:
        if not self.role.at_least(role):
            raise Forbidden(f"{doing} needs the {role} role; you are {self.role}")
