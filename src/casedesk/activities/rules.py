"""Admin operations on event rules and time rules.

Both are lists an admin keeps in order: a rule is saved at a position (last by default) and
the rules from there on move one place down. A time rule, once saved, also schedules a scan
of the cases that already exist, so it counts for cases that entered their state before it
was written.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from casedesk.activities.webhooks import check_webhooks
from casedesk.domain.automation.rules import RuleSpec
from casedesk.domain.automation.time_rules import TimeRuleSpec
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.kit.clock import utcnow
from casedesk.kit.tracing import trace_or_new
from casedesk.store.models import Rule, TimeRule
from casedesk.store.rules import OrderedRuleRepository
from casedesk.store.unit_of_work import UnitOfWork

SCAN = "timerule.scan"
Stored = TypeVar("Stored", Rule, TimeRule)
Spec = TypeVar("Spec", RuleSpec, TimeRuleSpec)
Hook = Callable[[UnitOfWork, uuid.UUID, bool], Awaitable[None]]


async def _nothing(uow: UnitOfWork, rule_id: uuid.UUID, enabled: bool) -> None:
    """Saving or deleting an event rule needs nothing more."""


@dataclass(frozen=True, slots=True)
class RuleKind(Generic[Stored, Spec]):
    """How one kind of rule is stored, and what saving or deleting one sets going."""

    label: str
    model: type[Stored]
    fields: tuple[str, ...]
    """The spec's fields that the rule's row keeps, as the spec's JSON form gives them."""
    repository: Callable[[UnitOfWork], OrderedRuleRepository[Stored]]
    after_save: Hook = _nothing
    """Called with the saved rule's id and whether it is enabled, before the commit."""

    async def create(self, uow: UnitOfWork, actor: Principal, spec: Spec) -> Stored:
        actor.require(Role.ADMIN, f"creating a {self.label}")
        await uow.begin_write()
        await check_webhooks(uow, spec.actions)
        rules = self.repository(uow)
        if spec.position is None:
            position = await rules.next_position()
        else:
            position = spec.position
            await rules.make_room_at(position)
        rule = self.model(position=position)
        self._fill(rule, spec)
        rules.add(rule)
        await uow.flush()
        await self.after_save(uow, rule.id, rule.enabled)
        await uow.commit()
        return rule

    async def replace(
        self, uow: UnitOfWork, actor: Principal, rule_id: uuid.UUID, spec: Spec
    ) -> Stored:
        actor.require(Role.ADMIN, f"changing a {self.label}")
        await uow.begin_write()
        await check_webhooks(uow, spec.actions)
        rules = self.repository(uow)
        rule = await rules.get(rule_id)
        self._fill(rule, spec)
        if spec.position is not None and spec.position != rule.position:
            await rules.make_room_at(spec.position)
            rule.position = spec.position
        await self.after_save(uow, rule.id, rule.enabled)
        await uow.commit()
        return rule

    async def delete(self, uow: UnitOfWork, actor: Principal, rule_id: uuid.UUID) -> None:
        actor.require(Role.ADMIN, f"deleting a {self.label}")
        await uow.begin_write()
        rules = self.repository(uow)
        await rules.delete(await rules.get(rule_id))
        await self.after_save(uow, rule_id, False)
        await uow.commit()

    def _fill(self, rule: Stored, spec: Spec) -> None:
        body = spec.model_dump(mode="json", exclude={"position"})
        for key in self.fields:
            setattr(rule, key, body[key])


def scan_key(rule_id: uuid.UUID) -> str:
    return f"{SCAN}:{rule_id}"


async def _scan_later(uow: UnitOfWork, rule_id: uuid.UUID, enabled: bool) -> None:
    """An enabled time rule looks at every existing case once; a disabled one never."""
    if not enabled:
        await uow.jobs.cancel(scan_key(rule_id))
        return
    await uow.jobs.schedule(
        kind=SCAN,
        key=scan_key(rule_id),
        due_at=utcnow(),
        payload={"rule_id": str(rule_id)},
        traceparent=trace_or_new().traceparent,
    )


EVENT_RULES: RuleKind[Rule, RuleSpec] = RuleKind(
    "rule",
    Rule,
    ("name", "enabled", "on", "conditions", "actions", "stop"),
    lambda uow: uow.rules,
)
TIME_RULES: RuleKind[TimeRule, TimeRuleSpec] = RuleKind(
    "time rule",
    TimeRule,
    ("name", "enabled", "since", "hours", "minutes", "calendar", "conditions", "actions"),
    lambda uow: uow.time_rules,
    after_save=_scan_later,
)
