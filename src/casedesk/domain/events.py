"""Domain events as CloudEvents 1.0 envelopes, written to the outbox with the change."""

from __future__ import annotations

import uuid
from typing import Any

from casedesk.domain.cases.priority import Priority
from casedesk.kit.ids import uuid7
from casedesk.kit.tracing import TraceContext
from casedesk.store.models import Case, OutboxEvent

EVENT_TYPES = (
    "case.created",
    "case.updated",
    "case.state_changed",
    "case.transferred",
    "case.closed",
    "case.reopened",
    "case.child_created",
    "case.rated",
    "task.created",
    "task.accepted",
    "comment.added",
    "sla.warning",
    "sla.breached",
)


def case_snapshot(case: Case) -> dict[str, Any]:
    """The fields of a case that consumers (rules, webhooks, search) filter on."""
    return {
        "id": str(case.id),
        "number": case.number,
        "title": case.title,
        "state": case.state,
        "closed": case.closed,
        "priority": Priority.from_rank(case.priority).value,
        "queue_id": str(case.queue_id),
        "assignee_id": str(case.assignee_id) if case.assignee_id else None,
        "customer_id": str(case.customer_id) if case.customer_id else None,
        "template_id": str(case.template_id),
        "channel": case.channel,
        "tags": list(case.tags),
        "form": dict(case.form),
        "version": case.version,
    }


def new_event(
    tenant_id: uuid.UUID,
    event_type: str,
    subject: Case,
    data: dict[str, Any],
    trace: TraceContext,
) -> OutboxEvent:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type}")
    return OutboxEvent(
        tenant_id=tenant_id,
        event_id=uuid7(),
        type=event_type,
        source=f"/tenants/{tenant_id}/cases",
        subject_id=subject.id,
        data={"case": case_snapshot(subject), **data},
        traceparent=trace.child().traceparent,
    )


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """The CloudEvents 1.0 JSON form, with the distributed-tracing extension."""
    return {
        "specversion": "1.0",
        "id": str(event.event_id),
        "source": event.source,
        "type": event.type,
        "subject": str(event.subject_id) if event.subject_id else None,
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "traceparent": event.traceparent,
        "sequence": str(event.id),
        "data": event.data,
    }
