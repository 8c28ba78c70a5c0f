"""Where triggers hand over what they found: each new item becomes a queued execution.

Both kinds of trigger call ``fire`` inside the transaction that also moves their cursor (a
polling run) or marks their delivery handled (an instant one). The item's source id is
claimed as seen in that transaction, so a crash before the commit repeats nothing and loses
nothing, and a racing second run of the same subscription fires nothing twice. Each
execution gets an ``execution.run`` job, which the workflow runner takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from casedesk.kit.clock import utcnow
from casedesk.kit.ids import uuid7
from casedesk.kit.tracing import TraceContext
from casedesk.store.models import Execution, Subscription
from casedesk.store.unit_of_work import UnitOfWork

RUN = "execution.run"


@dataclass(frozen=True, slots=True)
class TriggerItem:
    source_id: str
    """The item's id at the source: the only thing items are told apart by."""
    item: dict[str, Any]
    """The item as the trigger saw it: the whole entity, or an event carrying its id."""


def run_key(execution: Execution) -> str:
    return f"{RUN}:{execution.id}"


async def fire(
    uow: UnitOfWork, subscription: Subscription, items: Sequence[TriggerItem], trace: TraceContext
) -> list[Execution]:
    """Queue an execution of the subscription's workflow for each item not seen before."""
    workflow = await uow.workflows.get(subscription.workflow_id)
    fresh = set(await uow.seen.claim_new(subscription.id, [item.source_id for item in items]))
    executions = []
    for item in items:
        if item.source_id not in fresh:
            continue
        fresh.discard(item.source_id)  # the same id twice in one batch fires once
        execution = Execution(
            id=uuid7(),
            workflow_id=workflow.id,
            workflow_version=workflow.latest_version,
            subscription_id=subscription.id,
            source_id=item.source_id,
            trigger_item=item.item,
            status="queued",
            traceparent=trace.child().traceparent,
        )
        uow.executions.add(execution)
        executions.append(execution)
    await uow.flush()
    for execution in executions:
        await uow.jobs.schedule(
            kind=RUN,
            key=run_key(execution),
            due_at=utcnow(),
            payload={"execution_id": str(execution.id)},
            traceparent=execution.traceparent,
        )
    return executions


async def remember(uow: UnitOfWork, subscription: Subscription, source_ids: Sequence[str]) -> int:
    """Record ids as seen without firing (a first run's baseline); how many were new."""
    return len(await uow.seen.claim_new(subscription.id, source_ids))
