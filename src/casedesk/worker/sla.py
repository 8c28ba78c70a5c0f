"""SLA clocks driven by case events, and the jobs that warn and breach on time.

The ``sla`` consumer group starts a case's clocks when it is created, pauses and resumes them
as the case enters and leaves ``pending``-type states, and stops them when an agent first
replies in public (first response) or the case closes (resolution); reopening the case runs
the resolution clock again with the time it had left. Each running clock has
two scheduled jobs, keyed by the clock, so moving a target moves its jobs.

Events may be handled in any order (the RabbitMQ bus runs several deliveries at once, on
several workers). So the consumer locks the case and applies, in outbox-sequence order,
every event of the case its clocks have not yet accounted for, up to the one in hand: a
``case.closed`` handled before its ``case.created`` starts the clocks first, then meets
them, and the late ``case.created`` finds nothing left to do.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
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
from casedesk.domain.cases.priority import Priority
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.kit.tracing import parse_traceparent, trace_or_new
from casedesk.store.bus.base import Message
from casedesk.store.database import Database
from casedesk.store.models import Case, CaseSla, OutboxEvent, ScheduledJob, SlaPolicy
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.consumers import ConsumerGroup
from casedesk.worker.tenant_cache import TenantCache

GROUP = "sla"
WARNING, BREACH = "sla.warning", "sla.breach"
TYPES = ("case.created", "case.state_changed", "case.closed", "case.reopened", "comment.added")


@dataclass(frozen=True, slots=True)
class _Event:
    """What the clocks need of one event of the case."""

    sequence: int
    type: str
    data: dict[str, Any]
    time: datetime

    @classmethod
    def of_row(cls, event: OutboxEvent) -> _Event:
        return cls(event.id, event.type, event.data, event.time)

    @classmethod
    def of_message(cls, message: Message) -> _Event:
        envelope: dict[str, Any] = orjson.loads(message.body)
        time = datetime.fromisoformat(envelope["time"].replace("Z", "+00:00"))
        return cls(message.sequence, message.type, envelope["data"], time)


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
        return ConsumerGroup(GROUP, list(TYPES), self.handle, wants=self.wants)

    async def wants(self, message: Message) -> bool:
        """A tenant with no policy has no clocks (a policy in use cannot be deleted)."""
        return await self._has_policies.get(uuid.UUID(message.tenant_id))

    async def handle(self, message: Message, uow: UnitOfWork | None) -> None:
        assert uow is not None
        case = await uow.cases.find_locked(uuid.UUID(message.subject or ""))
        if case is None:
            return
        clocks = await uow.sla.clocks(case.id)
        applied = max((clock.applied_sequence or 0 for clock in clocks), default=0)
        if message.sequence <= applied:
            return  # a later event of the case, handled first, accounted for this one
        events = await self._unapplied(uow, case.id, applied, message)
        policies = {policy.id: policy for policy in await uow.sla.policies()}
        for event in events:
            if event.type == "case.created" and not clocks:
                clocks = await self._start(uow, case, event, list(policies.values()))
                continue
            for clock in clocks:
                policy = policies.get(clock.policy_id)
                if policy is not None and clock.status != "breached":
                    await self._apply(uow, case, event, clock, policy)
        for clock in clocks:
            clock.applied_sequence = message.sequence
            await _schedule(uow, clock, message.traceparent)

    async def _unapplied(
        self, uow: UnitOfWork, case_id: uuid.UUID, applied: int, message: Message
    ) -> Sequence[_Event]:
        """The case's events after ``applied`` up to the message's, in sequence order."""
        rows = await uow.outbox.of_subject(
            case_id, after=applied, up_to=message.sequence, types=TYPES
        )
        events = [_Event.of_row(row) for row in rows]
        if not events or events[-1].sequence != message.sequence:
            events.append(_Event.of_message(message))  # its row was purged: a late replay
        return events

    async def _apply(
        self, uow: UnitOfWork, case: Case, event: _Event, clock: CaseSla, policy: SlaPolicy
    ) -> None:
        data, now = event.data, event.time
        if event.type == "case.reopened":
            if clock.metric == "resolution":
                reopen(clock, policy, now)
            return
        if clock.status == "met":
            return
        if event.type == "case.closed" or (
            event.type == "comment.added"
            and clock.metric == "first_response"
            and data.get("public")
            and data.get("author_type") == "user"
        ):
            meet(clock, policy, now)
            return
        if event.type == "case.state_changed":
            machine = await machine_of_version(uow, case.machine_version_id)
            entering = machine.is_pending(data["to"]) and not machine.is_pending(data["from"])
            leaving = machine.is_pending(data["from"]) and not machine.is_pending(data["to"])
            if entering:
                pause(clock, policy, now)
            elif leaving:
                resume(clock, policy, now)

    async def _start(
        self, uow: UnitOfWork, case: Case, event: _Event, policies: list[SlaPolicy]
    ) -> list[CaseSla]:
        """The clocks of the policy that fitted the case as it was created."""
        created: dict[str, Any] = event.data.get("case", {})
        priority = Priority(created["priority"]).rank if "priority" in created else case.priority
        policy = choose_policy(policies, case.template_id, priority)
        if policy is None:
            return []
        clocks = []
        for metric in METRICS:
            minutes = getattr(policy, f"{metric}_minutes")
            if minutes:
                clocks.append(
                    uow.sla.add_clock(
                        start_clock(policy, metric, minutes, case.created_at, case.id)
                    )
                )
        await uow.flush()
        return clocks

    async def run_job(self, job: ScheduledJob) -> None:
        """``sla.warning`` and ``sla.breach``: record it on the case, once, if still due."""
        clock_id = uuid.UUID(str(job.payload["clock_id"]))
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            tenant = await uow.tenants.get(job.tenant_id)
            clock = await uow.sla.clock(clock_id)
            if clock is None:
                return  # its case is gone
            moment = SlaMoment(clock.case_id, clock_id, breached=job.kind == BREACH)
            context = ActivityContext(
                uow=uow,
                operator=Operator("system", None, "sla"),
                tenant_id=job.tenant_id,
                edition=tenant.edition,
                extensions=self.extensions,
                trace=(parse_traceparent(job.traceparent) or trace_or_new()).child(),
            )
            await uow.rollback()
            await RecordSlaActivity(context).run(moment)
