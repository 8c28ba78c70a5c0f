"""Admin operations on time rules.

Saving an enabled rule schedules a scan of the cases that already exist, so a new rule also
counts for the cases that entered their state before it was written.
"""

from __future__ import annotations

import uuid

from casedesk.activities.webhooks import check_webhooks
from casedesk.domain.automation.time_rules import TimeRuleSpec
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.kit.clock import utcnow
from casedesk.kit.tracing import trace_or_new
from casedesk.store.models import TimeRule
from casedesk.store.unit_of_work import UnitOfWork

SCAN = "timerule.scan"


def scan_key(rule_id: uuid.UUID) -> str:
    return f"{SCAN}:{rule_id}"


def _fill(rule: TimeRule, spec: TimeRuleSpec) -> None:
    body = spec.model_dump(mode="json", exclude={"position"})
    for key in ("name", "enabled", "since", "hours", "minutes", "calendar"):
        setattr(rule, key, body[key])
    rule.conditions, rule.actions = body["conditions"], body["actions"]


async def _scan_later(uow: UnitOfWork, rule: TimeRule) -> None:
    await uow.flush()
    if not rule.enabled:
        await uow.jobs.cancel(scan_key(rule.id))
        return
    await uow.jobs.schedule(
        kind=SCAN,
        key=scan_key(rule.id),
        due_at=utcnow(),
        payload={"rule_id": str(rule.id)},
        traceparent=trace_or_new().traceparent,
    )


async def create_time_rule(uow: UnitOfWork, actor: Principal, spec: TimeRuleSpec) -> TimeRule:
    actor.require(Role.ADMIN, "creating a time rule")
    await uow.begin_write()
    await check_webhooks(uow, spec.actions)
    if spec.position is None:
        position = await uow.time_rules.next_position()
    else:
        position = spec.position
        await uow.time_rules.make_room_at(position)
    rule = TimeRule(position=position)
    _fill(rule, spec)
    uow.time_rules.add(rule)
    await _scan_later(uow, rule)
    await uow.commit()
    return rule


async def replace_time_rule(
    uow: UnitOfWork, actor: Principal, rule_id: uuid.UUID, spec: TimeRuleSpec
) -> TimeRule:
    actor.require(Role.ADMIN, "changing a time rule")
    await uow.begin_write()
    await check_webhooks(uow, spec.actions)
    rule = await uow.time_rules.get(rule_id)
    _fill(rule, spec)
    if spec.position is not None and spec.position != rule.position:
        await uow.time_rules.make_room_at(spec.position)
        rule.position = spec.position
    await _scan_later(uow, rule)
    await uow.commit()
    return rule


async def delete_time_rule(uow: UnitOfWork, actor: Principal, rule_id: uuid.UUID) -> None:
    actor.require(Role.ADMIN, "deleting a time rule")
    await uow.begin_write()
    await uow.time_rules.delete(await uow.time_rules.get(rule_id))
    await uow.jobs.cancel(scan_key(rule_id))
    await uow.commit()
