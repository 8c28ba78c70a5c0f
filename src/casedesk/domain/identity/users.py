"""User rules: normalised e-mails, one e-mail per tenant, never lose the last admin."""

from __future__ import annotations

from casedesk.domain.identity.roles import Role
from casedesk.kit.errors import Conflict
from casedesk.store.models import User
from casedesk.store.unit_of_work import UnitOfWork


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def ensure_email_free(uow: UnitOfWork, email: str) -> None:
    if await uow.users.by_email(email) is not None:
        raise Conflict(f"a user with e-mail {email} already exists in this tenant", field="email")


async def ensure_admin_remains(uow: UnitOfWork, user: User, new_role: Role, active: bool) -> None:
    """Refuse a change that would leave the tenant without an active admin."""
    if user.role != Role.ADMIN or not user.active:
        return
    if new_role == Role.ADMIN and active:
        return
    if await uow.users.count_active_admins() <= 1:
        raise Conflict("this is the tenant's last active admin; promote another user first")
