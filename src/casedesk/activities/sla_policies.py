"""Admin operations on SLA policies."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError

from casedesk.domain.automation.sla import SlaPolicySpec
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.kit.errors import Conflict, InvalidInput
from casedesk.store.models import SlaPolicy
from casedesk.store.unit_of_work import UnitOfWork


async def _fill(uow: UnitOfWork, policy: SlaPolicy, spec: SlaPolicySpec) -> None:
    if spec.first_response_minutes is None and spec.resolution_minutes is None:
        raise InvalidInput(
            "give first_response_minutes, resolution_minutes or both",
            field="first_response_minutes",
        )
    template_id = None
    if spec.template is not None:
        template = await uow.templates.by_code(spec.template)
        if template is None:
            raise InvalidInput(f"no template {spec.template!r}", field="template")
        template_id = template.id
    policy.name, policy.template_id = spec.name, template_id
    policy.priority = spec.priority.rank if spec.priority is not None else None
    policy.first_response_minutes = spec.first_response_minutes
    policy.resolution_minutes = spec.resolution_minutes
    policy.warning_percent = spec.warning_percent
    policy.calendar = spec.calendar.model_dump(mode="json")


async def _commit(uow: UnitOfWork) -> None:
    try:
        await uow.commit()
    except IntegrityError:
        raise Conflict(
            "another policy already covers this template and priority", field="template"
        ) from None


async def save_policy(
    uow: UnitOfWork, actor: Principal, spec: SlaPolicySpec, policy_id: uuid.UUID | None = None
) -> SlaPolicy:
    actor.require(Role.ADMIN, "changing SLA policies")
    await uow.begin_write()
    policy = await uow.sla.get(policy_id) if policy_id else SlaPolicy()
    await _fill(uow, policy, spec)
    if policy_id is None:
        uow.sla.add(policy)
    await _commit(uow)
    return policy


async def delete_policy(uow: UnitOfWork, actor: Principal, policy_id: uuid.UUID) -> None:
    actor.require(Role.ADMIN, "deleting an SLA policy")
    await uow.begin_write()
    policy = await uow.sla.get(policy_id)
    if await uow.sla.in_use(policy.id):
        raise Conflict("cases have SLA clocks from this policy; change it instead")
    await uow.sla.delete(policy)
    await uow.commit()
