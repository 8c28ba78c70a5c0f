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
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import Counter

from casedesk.activities.base import ActivityContext, ConcurrentChange, Operator
from casedesk.domain.automation.conditions import changes_of, comparisons, holds
from casedesk.domain.automation.rules import MAX_CHAIN_DEPTH, RuleSpec
from casedesk.domain.events import CASE, EVENTS
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.kit.errors import CasedeskError
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import parse_traceparent, trace_or_new
from casedesk.store.bus.base import Message
from casedesk.store.database import Database
from casedesk.store.models import Rule
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.actions import automation_record, refusal_record, run_actions
from casedesk.worker.consumers import ConsumerGroup
from casedesk.worker.tenant_cache import TenantCache

GROUP = "automation"
RULE_RUNS = Counter("casedesk_rule_runs_total", "Rules that acted on an event", ["outcome"])
log = get_logger(__name__)


class RuleFailed(RuntimeError):
    """At least one rule failed on this event; the bus retries it (acted rules are skipped)."""


@dataclass(frozen=True, slots=True)
class TenantRules:
    """A tenant's enabled rules, parsed once, as the automation consumer sees them."""

    enabled: bool
    edition: str
    rules: list[tuple[Rule, RuleSpec]]
    loaded_at: float

    def listening_to(self, event_type: str) -> list[tuple[Rule, RuleSpec]]:
        return [(rule, spec) for rule, spec in self.rules if event_type in rule.on]


def _looks_at_customer(spec: RuleSpec) -> bool:
    return any(c.field.startswith("customer.") for _, c in comparisons(spec.conditions))


_NOT_EVENT_FACTS = frozenset({CASE, "actor", "chain_depth"})


class Automation:
    def __init__(
        self, database: Database, extensions: ExtensionRegistry, *, rules_ttl: float = 1.0
    ) -> None:
        self.database = database
        self.extensions = extensions
        self._rules = TenantCache(database, self._load_rules, ttl=rules_ttl)
        self._specs: dict[bytes, RuleSpec] = {}

    @property
    def rules_ttl(self) -> float:
        """How long a tenant's rules are reused: a changed rule applies within this time."""
        return self._rules.ttl

    @rules_ttl.setter
    def rules_ttl(self, seconds: float) -> None:
        self._rules.ttl = seconds

    async def rules_of(self, tenant_id: uuid.UUID) -> TenantRules:
        return await self._rules.get(tenant_id)

    async def _load_rules(self, uow: UnitOfWork) -> TenantRules:
        assert uow.tenant_id is not None
        tenant = await uow.tenants.get(uow.tenant_id)
        rules = await uow.rules.in_order(enabled_only=True)
        return TenantRules(
            tenant.enabled,
            tenant.edition,
            [(rule, self._spec(rule)) for rule in rules],
            time.monotonic(),
        )

    def _spec(self, rule: Rule) -> RuleSpec:
        """The rule's parsed spec, validated once per version of the rule: keyed by what it
        says, so an edit made any way at all is a new version."""
        fields = _spec_of(rule)
        version = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        spec = self._specs.get(version)
        if spec is None:
            if len(self._specs) > 10_000:
                self._specs.clear()
            spec = self._specs[version] = RuleSpec.model_validate(fields)
        return spec

    def group(self) -> ConsumerGroup:
        """Every event a rule may name: each declared type about a case, SLA ones included."""
        return ConsumerGroup(
            GROUP, EVENTS.families(subject=CASE), self.handle, own_transactions=True
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
        event = {key: value for key, value in data.items() if key not in _NOT_EVENT_FACTS}
        case = data.get(CASE, {})
        facts = {CASE: case, "event": event | {"type": message.type}, "actor": actor}
        if any(_looks_at_customer(spec) for _, spec in listening):
            facts["customer"] = await self._customer(tenant_id, case.get("customer_id"))
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

    async def _customer(self, tenant_id: uuid.UUID, customer_id: str | None) -> dict[str, Any]:
        """The case's customer as conditions see it; empty when the case has none."""
        if customer_id is None:
            return {}
        async with UnitOfWork(self.database, tenant_id) as uow:
            customer = await uow.customers.find(uuid.UUID(customer_id))
        if customer is None:
            return {}
        return {
            "id": str(customer.id),
            "email": customer.email,
            "name": customer.name,
            "domain": customer.email.rpartition("@")[2],
        }

    async def _run(
        self, rule: Rule, spec: RuleSpec, message: Message, edition: str, depth: int
    ) -> bool:
        """Run the rule's actions once for this event; False if it had already acted."""
        event_id = uuid.UUID(message.id)
        marker = f"rule:{rule.id}"
        case_id = uuid.UUID(message.subject or "")
        async with UnitOfWork(self.database, rule.tenant_id) as uow:
            await uow.begin_write()
            if not await uow.processed.claim(marker, event_id):
                return False
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
                    await run_actions(context, case_id, spec.actions)
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
            uow.session.add(refusal_record(rule, case_id, refusal, message.traceparent))
            await uow.commit()

    async def _stop_chain(self, message: Message, tenant_id: uuid.UUID, depth: int) -> None:
        log.warning("rule chain stopped", event_id=message.id, depth=depth)
        async with UnitOfWork(self.database, tenant_id) as uow:
            await uow.begin_write()
            if not await uow.processed.claim("automation:chain", uuid.UUID(message.id)):
                return
            uow.session.add(
                automation_record(
                    tenant_id,
                    uuid.UUID(message.subject or ""),
                    "automation.chain_stopped",
                    {"depth": depth, "event": message.type},
                    message.traceparent,
                )
            )
            await uow.commit()


def _spec_of(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "enabled": rule.enabled,
        "on": rule.on,
        "conditions": rule.conditions,
        "actions": rule.actions,
        "stop": rule.stop,
    }
