"""Admin operations on event rules."""

from __future__ import annotations

import uuid

from casedesk.activities.webhooks import check_webhooks
from casedesk.domain.automation.rules import RuleSpec
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.store.models import Rule
from casedesk.store.unit_of_work import UnitOfWork


def _stored(spec: RuleSpec) -> dict[str, object]:
    body = spec.model_dump(mode="json", exclude={"position"})
    return {key: body[key] for key in ("name", "enabled", "on", "conditions", "actions", "stop")}


async def create_rule(uow: UnitOfWork, actor: Principal, spec: RuleSpec) -> Rule:
    actor.require(Role.ADMIN, "creating a rule")
    await uow.begin_write()
    await check_webhooks(uow, spec.actions)
    if spec.position is None:
        position = await uow.rules.next_position()
    else:
        position = spec.position
        await uow.rules.make_room_at(position)
    rule: Rule = uow.rules.add(Rule(position=position, **_stored(spec)))
    await uow.commit()
    return rule


async def replace_rule(
    uow: UnitOfWork, actor: Principal, rule_id: uuid.UUID, spec: RuleSpec
) -> Rule:
    actor.require(Role.ADMIN, "changing a rule")
    await uow.begin_write()
    await check_webhooks(uow, spec.actions)
    rule = await uow.rules.get(rule_id)
    for key, value in _stored(spec).items():
        setattr(rule, key, value)
    if spec.position is not None and spec.position != rule.position:
        await uow.rules.make_room_at(spec.position)
        rule.position = spec.position
    await uow.commit()
    return rule


async def delete_rule(uow: UnitOfWork, actor: Principal, rule_id: uuid.UUID) -> None:
    actor.require(Role.ADMIN, "deleting a rule")
    await uow.begin_write()
    await uow.rules.delete(await uow.rules.get(rule_id))
    await uow.commit()
