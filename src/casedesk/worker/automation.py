"""The automation consumer: every case event runs through the tenant's event rules.

Each rule passes a filter chain — tenant enabled → event type → loop guard → conditions →
de-duplication — and its actions run through the normal activities, with the rule as the
operator, in one transaction together with the rule's "acted on this event" record. So a
redelivered event never makes a rule act twice, and a rule whose action fails leaves no
half-done change: it is logged and counted, the other rules still run, and the event is
retried until the bus dead-letters it. A domain refusal (say, an action the case's state
does not allow) is final: it is recorded on the case and not retried.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import Counter

from casedesk.activities.add_comment import AddCommentActivity, CommentParams
from casedesk.activities.apply_action import ActionParams, ApplyActionActivity
from casedesk.activities.base import ActivityContext, ConcurrentChange, Operator
from casedesk.activities.transfer_case import TransferCaseActivity, TransferParams
from casedesk.activities.update_case import UpdateCaseActivity, UpdateParams
from casedesk.domain.automation.conditions import changes_of, holds
from casedesk.domain.automation.rules import (
    MAX_CHAIN_DEPTH,
    Action,
    AddComment,
    AddTag,
    ApplyAction,
    Assign,
    RemoveTag,
    RuleSpec,
    SetPriority,
    Transfer,
)
from casedesk.domain.cases.inputs import ActionInput, CaseChanges, CommentInput, TransferInput
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.kit.errors import CasedeskError
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import parse_traceparent, trace_or_new
from casedesk.store.bus.base import Message
from casedesk.store.database import Database
from casedesk.store.models import ActionRecord, Rule
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.consumers import ConsumerGroup

GROUP = "automation"
RULE_RUNS = Counter("casedesk_rule_runs_total", "Rules that acted on an event", ["outcome"])
log = get_logger(__name__)


class RuleFailed(RuntimeError):
    """At least one rule failed on this event; the bus retries it (acted rules are skipped)."""


async def _assign(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    body = TransferInput(assignee_id=action.user_id, unassign=action.user_id is None)
    await TransferCaseActivity(ctx).run(TransferParams(case_id, body))


async def _transfer(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    await TransferCaseActivity(ctx).run(TransferParams(case_id, TransferInput(queue=action.queue)))


async def _set_priority(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    changes = CaseChanges(priority=action.priority)
    await UpdateCaseActivity(ctx).run(UpdateParams(case_id, changes))


async def _tags(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    case = await ctx.uow.cases.get(case_id)
    tags = set(case.tags)
    tags = tags | {action.tag} if isinstance(action, AddTag) else tags - {action.tag}
    await UpdateCaseActivity(ctx).run(UpdateParams(case_id, CaseChanges(tags=sorted(tags))))


async def _apply(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    await ApplyActionActivity(ctx).run(ActionParams(case_id, action.action, ActionInput()))


async def _comment(ctx: ActivityContext, case_id: uuid.UUID, action: Any) -> None:
    body = CommentInput(body=action.body, public=action.public)
    await AddCommentActivity(ctx).run(CommentParams(case_id, body))


ActionHandler = Callable[[ActivityContext, uuid.UUID, Any], Awaitable[None]]
ACTIONS: dict[type[Any], ActionHandler] = {
    Assign: _assign,
    Transfer: _transfer,
    SetPriority: _set_priority,
    AddTag: _tags,
    RemoveTag: _tags,
    ApplyAction: _apply,
    AddComment: _comment,
}


@dataclass(frozen=True, slots=True)
class TenantRules:
    """A tenant's enabled rules, parsed once, as the automation consumer sees them."""

    enabled: bool
    edition: str
    rules: list[tuple[Rule, RuleSpec]]
    loaded_at: float

    def listening_to(self, event_type: str) -> list[tuple[Rule, RuleSpec]]:
        return [(rule, spec) for rule, spec in self.rules if event_type in rule.on]


class Automation:
    def __init__(
        self, database: Database, extensions: ExtensionRegistry, *, rules_ttl: float = 1.0
    ) -> None:
        self.database = database
        self.extensions = extensions
        self.rules_ttl = rules_ttl
        """How long a tenant's rules are reused: a changed rule applies within this time."""
        self._rules: dict[uuid.UUID, TenantRules] = {}

    async def rules_of(self, tenant_id: uuid.UUID) -> TenantRules:
        cached = self._rules.get(tenant_id)
        if cached is not None and time.monotonic() - cached.loaded_at < self.rules_ttl:
            return cached
        async with UnitOfWork(self.database, tenant_id) as uow:
            tenant = await uow.tenants.get(tenant_id)
            rules = await uow.rules.in_order(enabled_only=True)
        loaded = TenantRules(
            tenant.enabled,
            tenant.edition,
            [(rule, RuleSpec.model_validate(_spec_of(rule))) for rule in rules],
            time.monotonic(),
        )
        self._rules[tenant_id] = loaded
        return loaded

    def group(self) -> ConsumerGroup:
        return ConsumerGroup(
            GROUP, ["case.*", "task.*", "comment.*"], self.handle, own_transactions=True
        )

    async def handle(self, message: Message, _: UnitOfWork | None = None) -> None:
        tenant_id = uuid.UUID(message.tenant_id)
        tenant = await self.rules_of(tenant_id)
        listening = tenant.listening_to(message.type)
        if not tenant.enabled or not listening:
            return
        data: dict[str, Any] = orjson.loads(message.body)["data"]
        actor = data.get("actor", {})
        depth = int(data.get("chain_depth", 0))
        facts = {"case": data.get("case", {}), "event": {"type": message.type}, "actor": actor}
        changes = changes_of(message.type, data)
        failed: list[str] = []
        for rule, spec in listening:
            if actor.get("type") == "rule" and actor.get("id") == str(rule.id):
                continue  # a rule never re-fires on a change it made itself
            if depth >= MAX_CHAIN_DEPTH:
                await self._stop_chain(message, tenant_id, depth)
                return
            if not holds(spec.conditions, facts, changes):
                continue
            try:
                acted = await self._run(rule, spec, message, tenant.edition, depth)
            except Exception as exc:  # the failure policy: log, count, let the others run
                RULE_RUNS.labels("failed").inc()
                log.exception("rule failed", rule=str(rule.id), event_id=message.id)
                failed.append(f"{rule.name}: {exc!r}")
                continue
            if acted and rule.stop:
                break
        if failed:
            raise RuleFailed("; ".join(failed))

    async def _run(
        self, rule: Rule, spec: RuleSpec, message: Message, edition: str, depth: int
    ) -> bool:
        """Run the rule's actions once for this event; False if it had already acted."""
        event_id = uuid.UUID(message.id)
        marker = f"rule:{rule.id}"
        case_id = uuid.UUID(message.subject or "")
        async with UnitOfWork(self.database, rule.tenant_id) as uow:
            await uow.begin_write()
            if await uow.processed.seen(marker, event_id):
                return False
            uow.processed.mark(marker, event_id)
            context = ActivityContext(
                uow=uow,
                operator=Operator("rule", str(rule.id), rule.name),
                tenant_id=rule.tenant_id,
                edition=edition,
                extensions=self.extensions,
                trace=(parse_traceparent(message.traceparent) or trace_or_new()).child(),
                depth=depth + 1,
            )
            try:
                async with uow.one_transaction():
                    for action in spec.actions:
                        await _route(action)(context, case_id, action)
            except ConcurrentChange:
                raise  # not a refusal: the event is retried and the rule runs again
            except CasedeskError as refusal:
                await uow.rollback()
                await self._refused(rule, message, case_id, refusal)
                RULE_RUNS.labels("refused").inc()
                return True
            await uow.commit()
        RULE_RUNS.labels("acted").inc()
        return True

    async def _refused(
        self, rule: Rule, message: Message, case_id: uuid.UUID, refusal: CasedeskError
    ) -> None:
        async with UnitOfWork(self.database, rule.tenant_id) as uow:
            await uow.begin_write()
            uow.processed.mark(f"rule:{rule.id}", uuid.UUID(message.id))
            uow.session.add(
                _record(
                    rule.tenant_id,
                    case_id,
                    "automation.refused",
                    message,
                    {
                        "rule_id": str(rule.id),
                        "rule": rule.name,
                        "reason": refusal.detail,
                    },
                )
            )
            await uow.commit()

    async def _stop_chain(self, message: Message, tenant_id: uuid.UUID, depth: int) -> None:
        log.warning("rule chain stopped", event_id=message.id, depth=depth)
        async with UnitOfWork(self.database, tenant_id) as uow:
            await uow.begin_write()
            if await uow.processed.seen("automation:chain", uuid.UUID(message.id)):
                return
            uow.processed.mark("automation:chain", uuid.UUID(message.id))
            uow.session.add(
                _record(
                    tenant_id,
                    uuid.UUID(message.subject or ""),
                    "automation.chain_stopped",
                    message,
                    {"depth": depth, "event": message.type},
                )
            )
            await uow.commit()


def _route(action: Action) -> ActionHandler:
    return ACTIONS[type(action)]


def _spec_of(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "enabled": rule.enabled,
        "on": rule.on,
        "conditions": rule.conditions,
        "actions": rule.actions,
        "stop": rule.stop,
    }


def _record(
    tenant_id: uuid.UUID, case_id: uuid.UUID, code: str, message: Message, memo: dict[str, Any]
) -> ActionRecord:
    trace = parse_traceparent(message.traceparent)
    return ActionRecord(
        tenant_id=tenant_id,
        case_id=case_id,
        code=code,
        memo=memo,
        operator_type="system",
        operator_id=None,
        operator_name="automation",
        trace_id=trace.trace_id if trace else trace_or_new().trace_id,
    )
