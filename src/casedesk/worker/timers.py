"""Time rules, run from the scheduled-job table.

The ``timers`` consumer group looks at each case after every change: for each enabled time
rule whose conditions hold, the case has one job, due when the rule's duration has passed
since its moment (``since``); when they stop holding the job is cancelled. No table scan
ever looks for due cases. Saving a rule schedules one scan of the existing cases, so a new
rule also counts for them.

When the job runs it looks again (the case may have changed since) and acts once for the
rule, the case and that moment, through the same actions as event rules. The job keeps the
traceparent of the change that scheduled it, so the rule's changes join that trace.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson

from casedesk.activities.base import ActivityContext, ConcurrentChange, Operator
from casedesk.activities.rules import SCAN as SCAN
from casedesk.domain.automation.conditions import holds
from casedesk.domain.automation.time_rules import TimeRuleSpec, anchor_of, due_at, episode_of
from casedesk.domain.events import case_snapshot
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import CasedeskError
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import parse_traceparent, trace_or_new
from casedesk.store.bus.base import Message
from casedesk.store.database import Database
from casedesk.store.models import ActionRecord, Case, ScheduledJob, TimeRule
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.actions import refusal_record, run_actions
from casedesk.worker.automation import RULE_RUNS
from casedesk.worker.consumers import ConsumerGroup
from casedesk.worker.tenant_cache import TenantCache

GROUP = "timers"
RUN = "timerule.run"
log = get_logger(__name__)


def spec_of(rule: TimeRule) -> TimeRuleSpec:
    return TimeRuleSpec.model_validate(
        {
            "name": rule.name,
            "enabled": rule.enabled,
            "since": rule.since,
            "hours": rule.hours,
            "minutes": rule.minutes,
            "calendar": rule.calendar,
            "conditions": rule.conditions,
            "actions": rule.actions,
        }
    )


async def _has_time_rules(uow: UnitOfWork) -> bool:
    return bool(await uow.time_rules.in_order(enabled_only=True))


def run_key(rule_id: uuid.UUID, case_id: uuid.UUID) -> str:
    return f"{RUN}:{rule_id}:{case_id}"


def _counting_from(spec: TimeRuleSpec, case: Case) -> datetime | None:
    """The moment the rule counts from, if its conditions hold for the case now."""
    anchor = anchor_of(case, spec.since)
    if anchor is None or not holds(spec.conditions, {"case": case_snapshot(case)}, {}):
        return None
    return anchor


async def plan(
    uow: UnitOfWork, rule: TimeRule, spec: TimeRuleSpec, case: Case, traceparent: str
) -> None:
    """Give the case the rule's job at the right time, or take it away."""
    key = run_key(rule.id, case.id)
    job = await uow.jobs.find(key)
    anchor = _counting_from(spec, case)
    if anchor is None:
        if job is not None and job.status == "pending":
            job.status = "cancelled"
        return
    due = due_at(spec, anchor)
    if job is not None and job.due_at == due and job.status != "cancelled":
        return  # already planned (or already done) for this moment
    await uow.jobs.schedule(
        kind=RUN,
        key=key,
        due_at=due,
        payload={"rule_id": str(rule.id), "case_id": str(case.id)},
        traceparent=traceparent,
        case_id=case.id,
    )


class Timers:
    def __init__(self, database: Database, extensions: ExtensionRegistry) -> None:
        self.database = database
        self.extensions = extensions
        self._has_rules = TenantCache(database, _has_time_rules)

    def group(self) -> ConsumerGroup:
        return ConsumerGroup(GROUP, ["case.*", "comment.*"], self.handle, wants=self.wants)

    async def wants(self, message: Message) -> bool:
        return await self._has_rules.get(uuid.UUID(message.tenant_id))

    async def handle(self, message: Message, uow: UnitOfWork | None) -> None:
        assert uow is not None
        rules = await uow.time_rules.in_order(enabled_only=True)
        if not rules:
            return
        case = await uow.cases.find(uuid.UUID(message.subject or ""))
        seen = orjson.loads(message.body)["data"].get("case", {}).get("version")
        if case is None or (seen is not None and seen < case.version):
            return  # a later event of the case plans it, under the trace of its own change
        for rule in rules:
            await plan(uow, rule, spec_of(rule), case, message.traceparent)

    async def scan_job(self, job: ScheduledJob) -> None:
        """``timerule.scan``: plan the rule for every case that exists, a page at a time."""
        rule_id = uuid.UUID(str(job.payload["rule_id"]))
        after: uuid.UUID | None = None
        while True:
            async with UnitOfWork(self.database, job.tenant_id) as uow:
                await uow.begin_write()
                rule = await uow.time_rules.find(rule_id)
                if rule is None or not rule.enabled:
                    return
                spec = spec_of(rule)
                cases = await uow.cases.batch_after(after, closed=spec.since == "closed")
                for case in cases:
                    await plan(uow, rule, spec, case, job.traceparent)
                await uow.commit()
            if not cases:
                return
            after = cases[-1].id

    async def run_job(self, job: ScheduledJob) -> None:
        """``timerule.run``: act once for this rule, case and moment, if it still applies."""
        rule_id = uuid.UUID(str(job.payload["rule_id"]))
        case_id = uuid.UUID(str(job.payload["case_id"]))
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            tenant = await uow.tenants.get(job.tenant_id)
            rule = await uow.time_rules.find(rule_id)
            case = await uow.cases.find(case_id)
            if not tenant.enabled or rule is None or not rule.enabled or case is None:
                return
            spec = spec_of(rule)
            anchor = _counting_from(spec, case)
            if anchor is None:
                return
            if due_at(spec, anchor) > utcnow():
                # The case moved on after this job was claimed: count again from its new moment.
                await plan(uow, rule, spec, case, job.traceparent)
                await uow.commit()
                return
            marker, episode = f"timerule:{rule.id}", episode_of(rule.id, case.id, anchor)
            if not await uow.processed.claim(marker, episode):
                return
            context = ActivityContext(
                uow=uow,
                operator=Operator("rule", str(rule.id), rule.name),
                tenant_id=job.tenant_id,
                edition=tenant.edition,
                extensions=self.extensions,
                trace=(parse_traceparent(job.traceparent) or trace_or_new()).child(),
                depth=1,
            )
            try:
                async with uow.one_transaction():
                    await run_actions(context, case.id, spec.actions)
            except ConcurrentChange:
                raise  # the job is retried and looks again
            except CasedeskError as refusal:
                record = refusal_record(rule, case_id, refusal, job.traceparent)
                await uow.rollback()
                await self._refused(record, marker, episode)
                RULE_RUNS.labels("refused").inc()
                return
            await uow.commit()
        RULE_RUNS.labels("acted").inc()
        log.info("time rule acted", rule=str(rule_id), case_id=str(case_id))

    async def _refused(self, record: ActionRecord, marker: str, episode: uuid.UUID) -> None:
        async with UnitOfWork(self.database, record.tenant_id) as uow:
            await uow.begin_write()
            uow.processed.mark(marker, episode)
            uow.session.add(record)
            await uow.commit()
