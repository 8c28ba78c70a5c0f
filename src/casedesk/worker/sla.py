"""SLA clocks driven by case events, and the jobs that warn and breach on time.

The ``sla`` consumer group starts a case's clocks when it is created, pauses and resumes them
as the case enters and leaves ``pending``-type states, and stops them when an agent first
replies in public (first response) or the case closes (resolution); reopening the case runs
the resolution clock again with the time it had left. Each running clock has
two scheduled jobs, keyed by the clock, so moving a target moves its jobs.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson

from casedesk.activities.base import ActivityContext, Operator
from casedesk.activities.record_sla import RecordSlaActivity, SlaMoment
from casedesk.domain.automation.sla import (
    METRICS,
    choose_policy,
    meet,
    pause,
    reopen,
    resume,
    start_clock,
)
from casedesk.domain.cases.machines import machine_of_version
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.kit.tracing import parse_traceparent, trace_or_new
from casedesk.store.bus.base import Message
from casedesk.store.database import Database
from casedesk.store.models import CaseSla, ScheduledJob, SlaPolicy
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.consumers import ConsumerGroup
from casedesk.worker.tenant_cache import TenantCache

GROUP = "sla"
WARNING, BREACH = "sla.warning", "sla.breach"


def _job_key(clock: CaseSla, kind: str) -> str:
    return f"{kind}:{clock.case_id}:{clock.metric}"


async def _schedule(uow: UnitOfWork, clock: CaseSla, traceparent: str) -> None:
    for kind, due in ((WARNING, clock.warning_at), (BREACH, clock.target_at)):
        key = _job_key(clock, kind)
        if clock.status == "running" and due is not None:
            await uow.jobs.schedule(
                kind=kind,
                key=key,
                due_at=due,
                payload={"clock_id": str(clock.id)},
                traceparent=traceparent,
                case_id=clock.case_id,
            )
        else:
            await uow.jobs.cancel(key)


async def _has_policies(uow: UnitOfWork) -> bool:
    return bool(await uow.sla.policies())


class Sla:
    def __init__(self, database: Database, extensions: ExtensionRegistry) -> None:
        self.database = database
        self.extensions = extensions
        self._has_policies = TenantCache(database, _has_policies)

    def group(self) -> ConsumerGroup:
        return ConsumerGroup(
            GROUP,
            ["case.created", "case.state_changed", "case.closed", "case.reopened", "comment.added"],
            self.handle,
            wants=self.wants,
        )

    async def wants(self, message: Message) -> bool:
        """A tenant with no policy has no clocks (a policy in use cannot be deleted)."""
        return await self._has_policies.get(uuid.UUID(message.tenant_id))

    async def handle(self, message: Message, uow: UnitOfWork | None) -> None:
        assert uow is not None
        envelope: dict[str, Any] = orjson.loads(message.body)
        data = envelope["data"]
        now = datetime.fromisoformat(envelope["time"].replace("Z", "+00:00"))
        case_id = uuid.UUID(message.subject or "")
        if message.type == "case.created":
            await self._start(uow, case_id, message.traceparent)
            return
        clocks = await uow.sla.clocks(case_id)
        if not clocks:
            return
        policies = {policy.id: policy for policy in await uow.sla.policies()}
        for clock in clocks:
            policy = policies.get(clock.policy_id)
            if policy is None or clock.status == "breached":
                continue
            await self._apply(uow, message, data, now, clock, policy)
            await _schedule(uow, clock, message.traceparent)

    async def _apply(
        self,
        uow: UnitOfWork,
        message: Message,
        data: dict[str, Any],
        now: datetime,
        clock: CaseSla,
        policy: SlaPolicy,
    ) -> None:
        if message.type == "case.reopened":
            if clock.metric == "resolution":
                reopen(clock, policy, now)
            return
        if clock.status == "met":
            return
        if message.type == "case.closed" or (
            message.type == "comment.added"
            and clock.metric == "first_response"
            and data.get("public")
            and data.get("author_type") == "user"
        ):
            meet(clock, policy, now)
            return
        if message.type == "case.state_changed":
            case = await uow.cases.get(clock.case_id)
            machine = await machine_of_version(uow, case.machine_version_id)
            entering = machine.is_pending(data["to"]) and not machine.is_pending(data["from"])
            leaving = machine.is_pending(data["from"]) and not machine.is_pending(data["to"])
            if entering:
                pause(clock, policy, now)
            elif leaving:
                resume(clock, policy, now)

    async def _start(self, uow: UnitOfWork, case_id: uuid.UUID, traceparent: str) -> None:
        case = await uow.cases.get(case_id)
        policy = choose_policy(await uow.sla.policies(), case.template_id, case.priority)
        if policy is None:
            return
        for metric in METRICS:
            minutes = getattr(policy, f"{metric}_minutes")
            if minutes:
                clock = uow.sla.add_clock(
                    start_clock(policy, metric, minutes, case.created_at, case.id)
                )
                await uow.flush()
                await _schedule(uow, clock, traceparent)

    async def run_job(self, job: ScheduledJob) -> None:
        """``sla.warning`` and ``sla.breach``: record it on the case, once, if still due."""
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            tenant = await uow.tenants.get(job.tenant_id)
            context = ActivityContext(
                uow=uow,
                operator=Operator("system", None, "sla"),
                tenant_id=job.tenant_id,
                edition=tenant.edition,
                extensions=self.extensions,
                trace=(parse_traceparent(job.traceparent) or trace_or_new()).child(),
            )
            await uow.rollback()
            moment = SlaMoment(uuid.UUID(str(job.payload["clock_id"])), breached=job.kind == BREACH)
            await RecordSlaActivity(context).run(moment)
