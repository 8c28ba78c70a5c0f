"""A user's own availability: automatic assignment passes over whoever is away."""

from __future__ import annotations

from casedesk.domain.assignment import Availability
from casedesk.domain.identity.principal import Principal
from casedesk.store.unit_of_work import UnitOfWork


async def availability_of(uow: UnitOfWork, actor: Principal) -> Availability:
    user = await uow.users.get(actor.user_id)
    return Availability(user.availability)


async def set_availability(
    uow: UnitOfWork, actor: Principal, availability: Availability
) -> Availability:
    """Set the caller's own availability; anyone may set their own."""
    await uow.begin_write()
    user = await uow.users.get(actor.user_id)
    user.availability = availability.value
    await uow.commit()
    return availability
