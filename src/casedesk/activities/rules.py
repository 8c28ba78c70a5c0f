"""Admin operations on event rules and time rules.

Both are lists an admin keeps in order: a rule is saved at a position (last by default) and
the rules from there on move one place down. A time rule, once saved, also schedules a scan
of the cases that already exist, so it counts for cases that entered their state before it
was written.

A rule is saved only if everything it names exists: the fields its conditions compare, and
the queues, users, state-machine actions and webhooks its actions use. Each missing one is
named in one 422. What is deleted after the rule was saved is refused when the rule runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from casedesk.domain.automation.conditions import comparisons, unknown_field
from casedesk.domain.automation.rules import (
    Action,
    ApplyAction,
    Assign,
    RuleSpec,
    SendWebhook,
    Transfer,
)
from casedesk.domain.automation.time_rules import TimeRuleSpec
from casedesk.domain.events import EVENTS
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import InvalidInput
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
        await check_references(uow, spec)
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
        rules = self.repository(uow)
        rule = await rules.get(rule_id)
        await check_references(uow, spec)
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


async def check_references(uow: UnitOfWork, spec: RuleSpec | TimeRuleSpec) -> None:
    """Refuse, naming each one, what the rule names that does not exist."""
    on = spec.on if isinstance(spec, RuleSpec) else []
    event_fields = frozenset({"type"}.union(*(_fields_of(name) for name in on)))
    problems = [
        (f"{at}.field", why)
        for at, comparison in comparisons(spec.conditions)
        if (why := unknown_field(comparison.field, event_fields)) is not None
    ]
    machine_actions = (
        await uow.machines.published_actions()
        if any(isinstance(action, ApplyAction) for action in spec.actions)
        else set()
    )
    for index, action in enumerate(spec.actions):
        missing = await _missing(uow, action, machine_actions)
        if missing is not None:
            problems.append((f"actions.{index}.{missing[0]}", missing[1]))
    if problems:
        raise InvalidInput(
            "the rule names what does not exist: "
            + "; ".join(f"{field}: {message}" for field, message in problems),
            field=problems[0][0],
            errors=[
                {"field": field, "in": "body", "message": message, "type": "unknown_reference"}
                for field, message in problems
            ],
        )


def _fields_of(event_type: str) -> tuple[str, ...]:
    declared = EVENTS.get(event_type)
    return declared.fields if declared is not None else ()


async def _missing(
    uow: UnitOfWork, action: Action, machine_actions: set[str]
) -> tuple[str, str] | None:
    """The action's field that names nothing, and why; None when everything it names exists."""
    if isinstance(action, Transfer) and await uow.queues.by_code(action.queue) is None:
        return "queue", f"no queue {action.queue!r}"
    if isinstance(action, Assign) and action.user_id is not None:
        user = await uow.users.find(action.user_id)
        if user is None or not user.active or user.role == "viewer":
            return "user_id", f"{action.user_id} is not an active admin or agent of this tenant"
    if isinstance(action, ApplyAction) and action.action not in machine_actions:
        known = ", ".join(sorted(machine_actions)) or "none yet"
        return "action", f"no published state machine has {action.action!r} (they have: {known})"
    if isinstance(action, SendWebhook) and await uow.webhooks.find(action.webhook_id) is None:
        return "webhook_id", f"no webhook {action.webhook_id}; create it with POST /api/v1/webhooks"
    return None


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
